# The paper's full model (DCMDyConv + temporal branch, word2vec + bi-GRU)
# with Video Swin-T (mmaction2's SwinTransformer3D, cut at its stride-16
# stage: 384 channels, 16 frames -> T' = 8 ConvLSTM steps) in place of
# I3D-R50. From scratch as written; with mmaction2's Kinetics-400 Swin-T
# recognizer checkpoint (download it yourself, see
# configs/_base_/models/components/backbone_swin3d-t.py) add
#   --cfg-options model.backbone.init_cfg.type=Pretrained \
#       model.backbone.init_cfg.checkpoint=PATH \
#       model.backbone.init_cfg.prefix=backbone. \
#       model.backbone.frozen_stages=2
# Not trained here (no A2D videos on these machines).
_base_ = [
    '../_base_/models/dcmdyconv-temporal_i3d-r50.py',
    '../_base_/models/components/backbone_swin3d-t.py',
    '../_base_/datasets/a2d_sentences.py',
    '../_base_/schedules/adam_10e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(_delete_=True, **_base_.swin3d_t),
    neck=dict(in_channels=_base_.swin3d_t_channels))
