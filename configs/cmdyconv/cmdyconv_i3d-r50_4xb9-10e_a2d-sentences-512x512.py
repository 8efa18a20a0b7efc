_base_ = [
    '../_base_/models/cmdyconv_i3d-r50.py',
    '../_base_/datasets/a2d_sentences.py',
    '../_base_/schedules/adam_10e.py',
    '../_base_/default_runtime.py',
]
