# A component, not a model: Video Swin-T (mmaction2's SwinTransformer3D,
# arch 'tiny') cut at its stride-16 stage as the video encoder: 384
# channels, T' = T / 2. A full config lists this file beside a model base
# and writes (mmengine forbids two bases defining `model`):
#
#   model = dict(backbone=dict(_delete_=True, **_base_.swin3d_t),
#                neck=dict(in_channels=_base_.swin3d_t_channels))
#
# Trained from scratch by default (pretrained=None; no hub is reachable
# here). mmaction2's Kinetics-400 recognizer checkpoint
#   swin-tiny-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb_20220930-241016b2.pth
# (download it yourself) loads with
#   init_cfg=dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')
# (stage 4 and norm3 are skipped on purpose). Input normalisation: the
# ImageNet mean / std of the model bases, as mmaction2's Swin recipes.
swin3d_t_channels = 384  # 4 x embed_dims
swin3d_t = dict(
    type='Swin3dEncoder',
    backbone=dict(
        type='mmaction.SwinTransformer3D',
        arch='tiny',
        pretrained=None,
        patch_size=(2, 4, 4),
        window_size=(8, 7, 7),
        drop_path_rate=0.1),
    # -1: nothing frozen (right from scratch); with the Kinetics weights
    # frozen_stages=2 mirrors the I3D configs (patch embedding and stages
    # 1-2 frozen, the stride-16 stage fine-tuned)
    frozen_stages=-1)
