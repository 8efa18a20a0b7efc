# Copyright (c) cmdyseg contributors. All rights reserved.
import pytest
import torch

from cmdyseg.fileio import WordVectorsNotFoundError, load_word_vectors
from cmdyseg.models.text_encoders import GRUSentenceEncoder
from cmdyseg.registry import MODELS


def build(path, **kwargs):
    kwargs.setdefault('hidden_size', 16)
    torch.manual_seed(0)
    return MODELS.build(
        dict(type='GRUSentenceEncoder', word_vectors=path, **kwargs))


def test_shape_and_registry(en_binary):
    encoder = build(en_binary, hidden_size=300)
    assert isinstance(encoder, GRUSentenceEncoder)
    assert encoder.embed_dims == 300  # read from the file header
    assert encoder.out_channels == 600  # D_T of the paper
    out = encoder(['one dog', 'Two cats and three fish!', 'ten'])
    assert out.shape == (3, 600) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    uni = build(en_binary, bidirectional=False)
    assert uni.out_channels == 16 and uni(['dog']).shape == (1, 16)
    assert encoder([]).shape == (0, 600)


def test_independent_of_padding(en_binary):
    encoder = build(en_binary)
    sentence = 'the dog and the cat'
    alone = encoder([sentence])
    for batch in ([sentence, 'one two three four five six seven eight'],
                  ['one two three four five six seven eight nine', sentence,
                   'fish']):
        out = encoder(batch)
        torch.testing.assert_close(
            out[batch.index(sentence)], alone[0], rtol=0, atol=1e-6)


def test_depends_on_words(en_binary):
    encoder = build(en_binary)
    out = encoder(['dog cat fish', 'dog pig fish', 'fish cat dog',
                   'dog cat fish'])
    assert not torch.allclose(out[0], out[1], atol=1e-4)  # one word changed
    assert not torch.allclose(out[0], out[2], atol=1e-4)  # order matters
    torch.testing.assert_close(out[0], out[3])
    # case and punctuation do not matter (tokenisation)
    torch.testing.assert_close(encoder(['Dog, cat; FISH!'])[0], out[0])


def test_truncation(en_binary):
    encoder = build(en_binary, max_words=3)
    out = encoder(['dog cat fish', 'dog cat fish pig apple', 'dog cat pig'])
    torch.testing.assert_close(out[0], out[1])
    assert not torch.allclose(out[0], out[2], atol=1e-4)


def test_oov_words(en_binary):
    encoder = build(en_binary)
    assert encoder.vocabulary_size is None  # lazy
    out = encoder(['dog zebra', 'dog giraffe', 'dog', 'zebra cat'])
    assert encoder.vocabulary_size == 20
    # unknown words are zero vectors, but still time steps
    torch.testing.assert_close(out[0], out[1])
    assert not torch.allclose(out[0], out[2], atol=1e-4)
    assert encoder.oov_counter == {'zebra': 2, 'giraffe': 1}
    assert encoder.num_oov_tokens == 3 and encoder.num_tokens == 7
    assert encoder.count_known_words('Dog, zebra and CAT!') == 2


def test_degenerate_sentences(en_binary):
    encoder = build(en_binary)
    out = encoder(['', '?!', 'zebra giraffe', 'dog'])
    assert out.shape == (4, 32) and torch.isfinite(out).all()
    # no word / no known word: the same uninformative feature
    torch.testing.assert_close(out[0], out[1])
    for sentence in ('', '  ...', 'zebra giraffe'):
        assert encoder.count_known_words(sentence) == 0
    with pytest.raises(TypeError, match='list'):
        encoder('a single string')


def test_gradients_frozen_table(en_binary):
    encoder = build(en_binary)
    out = encoder(['dog cat fish', 'one two'])
    out.pow(2).sum().backward()
    params = dict(encoder.named_parameters())
    assert params and all(name.startswith('gru.') for name in params)
    for name, param in params.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert not encoder.embedding_table.requires_grad
    assert encoder.embedding_table.grad is None
    # a non-persistent buffer: not in checkpoints
    assert all(key.startswith('gru.') for key in encoder.state_dict())
    assert encoder.embedding_table.shape == (21, 300)
    assert encoder.embedding_table[0].abs().sum() == 0


def test_trainable_table(en_binary):
    encoder = build(en_binary, freeze_embedding=False)
    table = encoder.embedding_table
    assert isinstance(table, torch.nn.Parameter)
    assert 'embedding_table' in encoder.state_dict()
    words, _ = load_word_vectors(en_binary)
    encoder(['dog zebra']).sum().backward()
    rows = table.grad.abs().sum(dim=1)
    assert rows[words.index('dog') + 1] > 0
    assert rows[0] == 0  # the OOV row stays zero
    assert rows[words.index('cat') + 1] == 0


def test_lazy_loading_and_errors(en_binary, tmp_path):
    missing = str(tmp_path / 'vectors.bin')
    # with dims given, the model builds without the file
    encoder = build(dict(path=missing, format='word2vec_binary', dims=300))
    assert encoder.out_channels == 32
    with pytest.raises(WordVectorsNotFoundError) as info:
        encoder(['dog'])
    assert missing in str(info.value)
    assert 'extract_word_vectors.py' in str(info.value)
    # without dims they are read from the file at construction
    with pytest.raises(WordVectorsNotFoundError, match='vectors.bin'):
        build(missing)
    # the file's D must match the declared one
    encoder = build(dict(path=en_binary, dims=50))
    with pytest.raises(ValueError, match='300 dims'):
        encoder.load_vectors()
    with pytest.raises(ValueError, match='unknown keys'):
        build(dict(path=en_binary, dim=300))
    with pytest.raises(ValueError, match='path is required'):
        build(dict(format='word2vec_binary', dims=300))


def test_init_weights_and_checkpoint(en_binary, tmp_path):
    source = build(en_binary)
    checkpoint = str(tmp_path / 'encoder.pth')
    torch.save(source.state_dict(), checkpoint)
    target = build(
        en_binary, init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    assert target.vocabulary_size is None
    target.init_weights()  # applies init_cfg, then loads the vectors
    assert target.vocabulary_size == 20
    for name, param in source.named_parameters():
        torch.testing.assert_close(dict(target.named_parameters())[name],
                                   param)
    sentences = ['dog cat', 'one two three']
    torch.testing.assert_close(target(sentences), source(sentences))


def test_follows_module_dtype_and_device(en_binary):
    encoder = build(en_binary).double()
    out = encoder(['dog cat'])  # the table is created after .double()
    assert encoder.embedding_table.dtype == torch.float64
    assert out.dtype == torch.float64
    if torch.cuda.is_available():
        encoder = build(en_binary).cuda()
        out = encoder(['dog cat', 'fish'])
        assert out.is_cuda and encoder.embedding_table.is_cuda
        cpu = encoder.cpu()(['dog cat', 'fish'])
        torch.testing.assert_close(out.cpu(), cpu, atol=1e-5, rtol=1e-5)
