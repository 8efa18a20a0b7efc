# Copyright (c) cmdyseg contributors. All rights reserved.
from .gru_sentence_encoder import GRUSentenceEncoder
from .pretrained_text import extract_minilm, minilm_dir
from .tokenizer import MAX_WORDS, tokenize
from .transformer_encoder import TransformerSentenceEncoder

__all__ = [
    'GRUSentenceEncoder', 'MAX_WORDS', 'tokenize',
    'TransformerSentenceEncoder', 'extract_minilm', 'minilm_dir'
]
