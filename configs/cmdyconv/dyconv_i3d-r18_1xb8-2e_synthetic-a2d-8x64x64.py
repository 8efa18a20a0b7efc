# The tiny configuration with the baseline head (Gavrilyuk et al.'s DyConv)
# and no temporal branch: the comparison point for the synthetic scenes
# that only position or only motion disambiguates.
_base_ = ['./dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py']

model = dict(
    neck=dict(use_temporal=False),
    head=dict(
        _delete_=True,
        type='DyConvHead',
        in_channels={{_base_.d_m}},
        text_channels={{_base_.d_t}},
        num_modules=1))
