# The full model (DCMDyConv + temporal branch, I3D-R50) on Ref-YouTube-VOS:
# trained on train (frame samples), tested on valid at the video level
# (every listed frame of every expression). valid's masks are private, so
# the test writes the server's files:
#   python tools/test.py THIS_CONFIG CHECKPOINT --format-only --out DIR
# and DIR/submission.zip goes to the CodaLab server. Ref-DAVIS17 zero-shot:
# ..._test-ref-davis17.py. Not trained yet (model_zoo.md).
_base_ = [
    '../_base_/models/dcmdyconv-temporal_i3d-r50.py',
    '../_base_/datasets/ref_youtube_vos.py',
    '../_base_/schedules/adam_10e.py',
    '../_base_/default_runtime.py',
]
# no validation split with public masks: train without validation (as
# ReferFormer does) and keep the last checkpoints
val_dataloader = None
val_evaluator = None
val_cfg = None
default_hooks = dict(checkpoint=dict(save_best=None))
test_cfg = dict(type='ReferVideoTestLoop', batch_size=4, sentences_per_pass=8)
