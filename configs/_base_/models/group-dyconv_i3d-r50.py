# Table 3, "+ Our DyConv": groupwise text kernel, pointwise conv, coordinates.
_base_ = ['./dcmdyconv_i3d-r50.py']
model = dict(
    head=dict(
        _delete_=True,
        type='GroupDyConvHead',
        in_channels={{_base_.d_m}},
        text_channels={{_base_.d_t}},
        groups=64,
        num_modules=3))
