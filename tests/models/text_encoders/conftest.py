# Copyright (c) cmdyseg contributors. All rights reserved.
"""Real, small word vector files for the text encoder tests (see
tests/word_vector_files.py; tests/conftest.py puts tests/ on sys.path)."""
from word_vector_files import en_binary, en_text  # noqa: F401
