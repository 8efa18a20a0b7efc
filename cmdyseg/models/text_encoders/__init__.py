# Copyright (c) cmdyseg contributors. All rights reserved.
from .gru_sentence_encoder import GRUSentenceEncoder
from .tokenizer import MAX_WORDS, tokenize

__all__ = ['GRUSentenceEncoder', 'MAX_WORDS', 'tokenize']
