# The paper's J-HMDB Sentences protocol: the model trained on A2D Sentences
# (dcmdyconv-temporal_i3d-r50_4xb9-10e_a2d-sentences-512x512.py) evaluated
# on J-HMDB Sentences, test only:
#   python tools/test.py THIS_CONFIG A2D_CHECKPOINT
_base_ = [
    '../_base_/models/dcmdyconv-temporal_i3d-r50.py',
    '../_base_/datasets/jhmdb_sentences.py', '../_base_/schedules/adam_10e.py',
    '../_base_/default_runtime.py'
]
