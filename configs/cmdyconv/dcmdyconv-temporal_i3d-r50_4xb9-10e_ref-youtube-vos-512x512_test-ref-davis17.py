# Ref-DAVIS17 zero-shot, as ReferFormer reports it: the model trained on
# Ref-YouTube-VOS (dcmdyconv-temporal_i3d-r50_4xb9-10e_ref-youtube-vos-
# 512x512.py) tested on the DAVIS 2017 val videos, J&F of each of the four
# expression sets averaged. Test only:
#   python tools/test.py THIS_CONFIG REF_YOUTUBE_VOS_CHECKPOINT
_base_ = [
    '../_base_/models/dcmdyconv-temporal_i3d-r50.py',
    '../_base_/datasets/ref_davis17.py',
    '../_base_/schedules/adam_10e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_dataloader = None
val_evaluator = None
val_cfg = None
test_cfg = dict(type='ReferVideoTestLoop', batch_size=4, sentences_per_pass=8)
