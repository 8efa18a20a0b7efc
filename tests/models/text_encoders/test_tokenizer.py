# Copyright (c) cmdyseg contributors. All rights reserved.
import os
import os.path as osp

import pytest

from cmdyseg.models.text_encoders import MAX_WORDS, tokenize

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def annotation_file(name):
    """The real annotation files: $CMDYSEG_ANNOTATION_ROOT, data/ in the
    repository, or ../shared/data beside it."""
    roots = [
        os.environ.get('CMDYSEG_ANNOTATION_ROOT'),
        osp.join(REPO, 'data'),
        osp.join(osp.dirname(REPO), 'shared', 'data')
    ]
    for root in roots:
        if root and osp.isfile(osp.join(root, name)):
            return osp.join(root, name)
    pytest.skip(f'real annotation file {name} not found in {roots}')


def read_queries(path, num_fields):
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    return [line.split(',', num_fields - 1)[-1] for line in lines[1:]]


def test_rules():
    assert tokenize('Guy in blue shirt') == ['guy', 'in', 'blue', 'shirt']
    # leading, trailing, doubled spaces, tabs, newlines
    assert tokenize('  the  pigeon\tis\n limping  ') == [
        'the', 'pigeon', 'is', 'limping'
    ]
    # apostrophes are deleted (one word), other punctuation splits
    assert tokenize("a man's leg") == ['a', 'mans', 'leg']
    assert tokenize('a man\u2019s leg') == ['a', 'mans', 'leg']
    assert tokenize('left,right;up-down.') == ['left', 'right', 'up', 'down']
    assert tokenize('Hello!!! (world)?') == ['hello', 'world']
    assert tokenize('the ¿cat¡ «runs»') == ['the', 'cat', 'runs']
    assert tokenize('shot 2 times') == ['shot', '2', 'times']
    assert tokenize('') == []
    assert tokenize('   ') == []
    assert tokenize('... !?') == []


def test_truncation():
    sentence = ' '.join(f'w{i}' for i in range(25))
    assert MAX_WORDS == 20
    assert tokenize(sentence) == [f'w{i}' for i in range(20)]
    assert tokenize(sentence, max_words=3) == ['w0', 'w1', 'w2']
    assert len(tokenize(sentence, max_words=None)) == 25


def test_bad_input():
    with pytest.raises(TypeError, match='str'):
        tokenize(['a', 'list'])
    with pytest.raises(TypeError):
        tokenize(None)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match='max_words'):
            tokenize('a b', max_words=bad)


@pytest.mark.parametrize('name, num_fields, num_queries, longest', [
    ('a2d_sentences/a2d_annotation.txt', 3, 6655, 20),
    ('jhmdb_sentences/jhmdb_annotation.txt', 2, 928, None),
])
def test_real_queries(name, num_fields, num_queries, longest):
    queries = read_queries(annotation_file(name), num_fields)
    assert len(queries) == num_queries
    lengths = []
    for query in queries:
        tokens = tokenize(query)
        assert 1 <= len(tokens) <= MAX_WORDS, query
        # lower-case words of letters / digits only, nothing empty
        assert all(t and t == t.lower() and t.isalnum() for t in tokens)
        # nothing is lost but case and punctuation
        assert ''.join(tokens) == ''.join(
            c for c in query.lower() if c.isalnum())
        # tokenising is idempotent
        assert tokenize(' '.join(tokens)) == tokens
        lengths.append(len(tokenize(query, max_words=None)))
    if longest is not None:
        # the paper's 20-word limit truncates no real A2D query
        assert max(lengths) == longest


def test_real_quirks():
    """The quirks listed in the data README occur and are handled."""
    queries = read_queries(
        annotation_file('a2d_sentences/a2d_annotation.txt'), 3)
    padded = [q for q in queries if q != q.strip()]
    doubled = [q for q in queries if '  ' in q.strip()]
    capitals = [q for q in queries if q != q.lower()]
    apostrophes = [q for q in queries if "'" in q]
    for group in (padded, doubled, capitals, apostrophes):
        assert group  # the quirk is really in the file
    for query in padded + doubled + capitals:
        if "'" not in query:
            assert tokenize(query) == query.lower().split()
    expected = ('the dog is leaping to grab a frisbee in the mans '
                'hand').split()
    assert tokenize('the dog is leaping to grab a frisbee in the '
                    "man's hand") == expected
    assert all('mans' in tokenize(q) for q in apostrophes)
