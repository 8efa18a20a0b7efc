# Table 3, "Baseline (DyConv)": Gavrilyuk et al.'s 1x1 dynamic conv with a
# tanh text kernel and 8 coordinate channels.
_base_ = ['./dcmdyconv_i3d-r50.py']
model = dict(
    head=dict(
        _delete_=True,
        type='DyConvHead',
        in_channels={{_base_.d_m}},
        text_channels={{_base_.d_t}},
        num_modules=1))
