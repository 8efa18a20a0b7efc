# A component, not a model: Video Swin-B (mmaction2's SwinTransformer3D,
# arch 'base') cut at its stride-16 stage as the video encoder: 512
# channels, T' = T / 2. Use it as backbone_swin3d-t.py (with
# `_base_.swin3d_b` / `_base_.swin3d_b_channels`).
#
# Trained from scratch by default (pretrained=None). mmaction2's
# Kinetics-400 recognizer checkpoint
#   swin-base-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb_20220930-182ec6cc.pth
# loads with init_cfg=dict(type='Pretrained', checkpoint=PATH,
# prefix='backbone.').
swin3d_b_channels = 512  # 4 x embed_dims
swin3d_b = dict(
    type='Swin3dEncoder',
    backbone=dict(
        type='mmaction.SwinTransformer3D',
        arch='base',
        pretrained=None,
        patch_size=(2, 4, 4),
        window_size=(8, 7, 7),
        # mmaction2's Swin-B Kinetics recipe
        drop_path_rate=0.3),
    frozen_stages=-1)
