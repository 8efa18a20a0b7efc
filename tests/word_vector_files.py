# Copyright (c) cmdyseg contributors. All rights reserved.
"""Real, small word vector files, as pytest fixtures shared by the tests of
the word vector files (tests/fileio) and of the text encoder
(tests/models/text_encoders), whose conftest.py files import them.

gensim's wheel ships its test data in ``gensim/test/test_data``; we use
``EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt``: 20 English words
(one..ten, dog, pig, cat, fish, birds, apple, ...) with 300-d word2vec
vectors, in the word2vec text format.
"""
import os.path as osp

import pytest

EN_TEXT = 'EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt'


def gensim_test_file(name):
    from gensim.test.utils import datapath
    path = datapath(name)
    if not osp.isfile(path):
        pytest.skip(f'gensim test data file {name} is not installed')
    return path


@pytest.fixture(scope='session')
def en_text():
    """20 words x 300 dims, word2vec text format."""
    return gensim_test_file(EN_TEXT)


@pytest.fixture(scope='session')
def en_binary(en_text, tmp_path_factory):
    """The same vectors in the word2vec binary format, written by gensim."""
    from gensim.models import KeyedVectors
    path = str(tmp_path_factory.mktemp('w2v') / 'en_1_10.bin')
    KeyedVectors.load_word2vec_format(en_text).save_word2vec_format(
        path, binary=True)
    return path
