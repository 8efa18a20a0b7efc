# Copyright (c) cmdyseg contributors. All rights reserved.
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from gensim.models import KeyedVectors
from load_script import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'dataset_converters',
                'extract_word_vectors.py')
EN_TEXT = 'EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt'

A2D = """video_id,instance_id,query
vidA,0,the Dog  chases the  cat
vidA,1 (copy), a fish, and a DOG
vidB,0,one two three zebra zebra
"""
JHMDB = """video_id,query
clip_1,Zebra eats an apple
clip_2,  dog
"""


@pytest.fixture(scope='module')
def tool():
    return load_script(TOOL, 'extract_word_vectors')


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
    """The 20-word, 300-d English vectors of gensim's test data, as text and
    as binary."""
    from gensim.test.utils import datapath
    text = datapath(EN_TEXT)
    if not osp.isfile(text):
        pytest.skip(f'gensim test data file {EN_TEXT} is not installed')
    kv = KeyedVectors.load_word2vec_format(text)
    binary = str(tmp_path_factory.mktemp('src') / 'en.bin')
    kv.save_word2vec_format(binary, binary=True)
    return dict(text=text, binary=binary, kv=kv)


@pytest.fixture
def annotations(tmp_path):
    a2d = tmp_path / 'a2d_annotation.txt'
    a2d.write_text(A2D)
    jhmdb = tmp_path / 'jhmdb_annotation.txt'
    jhmdb.write_text(JHMDB)
    return str(a2d), str(jhmdb)


def test_read_queries(tool, annotations):
    a2d, jhmdb = annotations
    assert tool.read_queries(a2d) == [
        'the Dog  chases the  cat', ' a fish, and a DOG',
        'one two three zebra zebra'
    ]
    assert tool.read_queries(jhmdb) == ['Zebra eats an apple', '  dog']


@pytest.mark.parametrize('kind', ['binary', 'text'])
def test_extract(tool, sources, annotations, tmp_path, kind):
    out = str(tmp_path / 'out' / 'small.bin')
    report = tool.main([
        *annotations, '--vectors', sources[kind], '--out', out, '--report',
        str(tmp_path / 'report.json')
    ])
    # words: the dog chases cat a fish and one two three zebra eats an apple
    # in the EN file: dog cat fish one two three apple
    kv = sources['kv']
    small = KeyedVectors.load_word2vec_format(out, binary=True)
    assert list(small.index_to_key) == [
        'one', 'two', 'three', 'dog', 'cat', 'fish', 'apple'
    ]  # source order
    for word in small.index_to_key:
        np.testing.assert_array_equal(small[word], kv[word])
    assert report['num_sentences'] == 5
    assert report['vocabulary_size'] == 14
    assert report['num_tokens'] == 5 + 5 + 5 + 4 + 1
    assert report['num_found'] == 7
    assert report['num_oov_words'] == 7
    assert report['oov_words'] == {
        'zebra': 3, 'a': 2, 'the': 2, 'an': 1, 'and': 1, 'chases': 1,
        'eats': 1
    }
    # most frequent first, then alphabetical
    assert list(report['oov_words'])[:3] == ['zebra', 'a', 'the']
    assert report['num_oov_tokens'] == 11
    assert report['dims'] == 300
    with open(tmp_path / 'report.json') as f:
        assert json.load(f) == report
    assert sorted(os.listdir(tmp_path / 'out')) == ['small.bin']


def test_truncation_and_case_fallback(tool, sources, tmp_path):
    ann = tmp_path / 'ann.txt'
    ann.write_text('video_id,query\nv,dog cat fish apple\n')
    out = str(tmp_path / 'o.bin')
    report = tool.extract_word_vectors(
        sources['binary'], [str(ann)], out, max_words=2)
    assert report['vocabulary_size'] == 2 and report['num_oov_words'] == 0
    # a cased source: 'Cat' is used for 'cat' only with case_fallback
    cased = str(tmp_path / 'cased.txt')
    with open(cased, 'w') as f:
        f.write('2 3\nCat 1 2 3\ndog 4 5 6\n')
    report = tool.extract_word_vectors(cased, [str(ann)], out)
    assert report['oov_words'] == {'apple': 1, 'cat': 1, 'fish': 1}
    report = tool.extract_word_vectors(
        cased, [str(ann)], out, case_fallback=True)
    assert report['case_fallbacks'] == {'cat': 'Cat'}
    small = KeyedVectors.load_word2vec_format(out, binary=True)
    np.testing.assert_array_equal(small['cat'], [1, 2, 3])


def test_errors(tool, sources, tmp_path):
    bad = tmp_path / 'bad.txt'
    bad.write_text('vid,sentence\nv,a dog\n')
    with pytest.raises(ValueError, match='bad.txt.*unknown header'):
        tool.read_queries(str(bad))
    short = tmp_path / 'short.txt'
    short.write_text('video_id,instance_id,query\nv,a dog\n')
    with pytest.raises(ValueError, match='short.txt.* line 2'):
        tool.read_queries(str(short))
    none = tmp_path / 'none.txt'
    none.write_text('video_id,query\nv,zebra giraffe\n')
    with pytest.raises(ValueError, match='none of the 2 words'):
        tool.extract_word_vectors(sources['binary'], [str(none)],
                                  str(tmp_path / 'o.bin'))
    assert not osp.exists(tmp_path / 'o.bin')
    with pytest.raises(ValueError, match='overwrite'):
        tool.extract_word_vectors(sources['binary'], [str(none)],
                                  sources['binary'])


def test_cli(tool, sources, annotations, tmp_path, capsys):
    out = str(tmp_path / 'cli.bin')
    run = subprocess.run(
        [sys.executable, TOOL, *annotations, '--vectors', sources['binary'],
         '--out', out],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert 'OOV words:       7' in run.stdout
    assert 'zebra (3)' in run.stdout
    assert len(KeyedVectors.load_word2vec_format(out, binary=True)) == 7
    # bad input: a message naming the file and exit status 1
    code = tool.cli([
        annotations[0], '--vectors',
        str(tmp_path / 'missing.bin'), '--out', out
    ])
    assert code == 1
    assert 'missing.bin' in capsys.readouterr().err
