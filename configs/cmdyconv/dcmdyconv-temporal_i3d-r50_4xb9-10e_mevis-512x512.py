# The full model (DCMDyConv + temporal branch, I3D-R50) on MeViS: trained
# on train, J&F on valid_u (masks public); for the valid split (masks
# private, CodaLab 15094):
#   python tools/test.py THIS_CONFIG CHECKPOINT --format-only --out DIR \
#       --cfg-options test_dataloader.dataset.split=valid
# Not trained yet (model_zoo.md).
_base_ = [
    '../_base_/models/dcmdyconv-temporal_i3d-r50.py',
    '../_base_/datasets/mevis.py',
    '../_base_/schedules/adam_10e.py',
    '../_base_/default_runtime.py',
]
val_dataloader = None
val_evaluator = None
val_cfg = None
default_hooks = dict(checkpoint=dict(save_best=None))
test_cfg = dict(type='ReferVideoTestLoop', batch_size=4, sentences_per_pass=8)
