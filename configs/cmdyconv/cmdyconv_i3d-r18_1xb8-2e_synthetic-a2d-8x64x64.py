# The tiny configuration with the CMDyConv head (no offsets) and no temporal
# branch: isolates the effect of the context-modulated kernel.
_base_ = ['./dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py']

model = dict(
    neck=dict(use_temporal=False),
    head=dict(
        _delete_=True,
        type='CMDyConvHead',
        in_channels={{_base_.d_m}},
        text_channels={{_base_.d_t}},
        groups=16,
        num_modules=3,
        kv_per_group=True))
