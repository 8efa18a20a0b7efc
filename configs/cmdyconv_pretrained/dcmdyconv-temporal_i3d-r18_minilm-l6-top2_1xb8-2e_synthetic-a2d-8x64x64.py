# As dcmdyconv-temporal_i3d-r18_minilm-l6-frozen_1xb8-2e_synthetic-a2d-
# 8x64x64.py, but the top 2 of MiniLM's 6 transformer blocks are fine-tuned
# (embeddings and blocks 1-4 frozen, in eval mode), at lr 1e-3 x 0.02 =
# 2e-5 (a usual BERT fine-tuning rate; the rest of the model keeps the
# schedule's 1e-3).
_base_ = [
    './dcmdyconv-temporal_i3d-r18_minilm-l6-frozen_1xb8-2e_'
    'synthetic-a2d-8x64x64.py'
]

model = dict(text_encoder=dict(trainable_layers=2))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'text_encoder.transformer': dict(lr_mult=0.02)}))
