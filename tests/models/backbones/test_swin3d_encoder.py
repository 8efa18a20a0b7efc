# Copyright (c) cmdyseg contributors. All rights reserved.
"""Swin3dEncoder: mmaction2's Video Swin cut at its stride-16 stage, with
the (feat, static) contract of the I3D adapters."""
import copy
import os.path as osp

import pytest
import torch

import cmdyseg  # noqa: F401  (compatibility fixes before mmaction)

pytest.importorskip('mmcv', reason='mmaction2 needs mmcv')
pytest.importorskip('mmaction.models', reason='needs mmaction2')

from mmengine.registry import DefaultScope  # noqa: E402

from cmdyseg.models.backbones import Swin3dEncoder  # noqa: E402
from cmdyseg.models.backbones.pretrained import \
    PretrainedMismatchError  # noqa: E402
from cmdyseg.registry import MODELS  # noqa: E402

SWIN_T = dict(type='mmaction.SwinTransformer3D', arch='tiny')
# A very small Swin for the checkpoint tests (4 stages as mmaction builds
# them for a recognizer).
MINI = dict(
    type='mmaction.SwinTransformer3D',
    arch=dict(embed_dims=8, depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 4]),
    window_size=(2, 3, 3),
    drop_path_rate=0.)


def _build(backbone=SWIN_T, **kwargs):
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        return MODELS.build(
            dict(type='Swin3dEncoder', backbone=copy.deepcopy(backbone),
                 **kwargs))


def test_swin_t_contract_shapes():
    from mmaction.models.backbones.swin import SwinTransformer3D
    torch.manual_seed(0)
    model = _build()
    assert isinstance(model, Swin3dEncoder)
    assert isinstance(model.backbone, SwinTransformer3D)
    # cut after the third stage: no stage 4, no merging after stage 3
    assert len(model.backbone.layers) == 3
    assert model.backbone.layers[2].downsample is None
    assert hasattr(model.backbone, 'norm2')
    assert not hasattr(model.backbone, 'norm3')
    assert model.out_channels == 384 and model.in_channels == 3
    model.init_weights()
    model.eval()
    with torch.no_grad():
        feat, static = model(torch.randn(1, 3, 8, 64, 64))
    # T / 2 (patch 2), H / 16, W / 16
    assert feat.shape == (1, 384, 4, 4, 4)
    assert static.shape == (1, 384, 4, 4)
    assert torch.isfinite(feat).all()
    torch.testing.assert_close(
        static.norm(dim=1), torch.ones(1, 4, 4), rtol=0, atol=1e-5)
    mean = torch.nn.functional.normalize(feat.mean(2), dim=1)
    torch.testing.assert_close(static, mean)


def test_swin_b_channels():
    model = _build(dict(SWIN_T, arch='base'))
    assert model.out_channels == 512
    model.eval()
    with torch.no_grad():
        feat, static = model(torch.randn(1, 3, 4, 32, 32))
    assert feat.shape == (1, 512, 2, 2, 2) and static.shape == (1, 512, 2, 2)


def test_frozen_stages_and_gradients():
    model = _build(MINI, frozen_stages=2)
    model.train()
    frozen = [model.backbone.patch_embed, model.backbone.layers[0],
              model.backbone.layers[1]]
    for module in frozen:
        assert not module.training
        assert not any(p.requires_grad for p in module.parameters())
    assert model.backbone.layers[2].training
    feat, static = model(torch.randn(2, 3, 4, 32, 32))
    (feat.sum() + static.sum()).backward()
    with_grad = {
        n.split('.')[1] + ('.' + n.split('.')[2] if n.startswith(
            'backbone.layers') else '')
        for n, p in model.named_parameters() if p.grad is not None
    }
    assert with_grad == {'layers.2', 'norm2'}


def test_bad_configs():
    with pytest.raises(ValueError, match='out_indices'):
        _build(dict(MINI, out_indices=(3, )))
    with pytest.raises(ValueError, match='frozen_stages on the encoder'):
        _build(dict(MINI, frozen_stages=1))
    with pytest.raises(ValueError, match="init_cfg=dict\\(type='Pretrained'"):
        _build(dict(MINI, pretrained='x.pth', pretrained2d=False))
    with pytest.raises(ValueError, match='Pretrained backbone.init_cfg'):
        _build(dict(MINI, init_cfg=dict(type='Pretrained', checkpoint='x')))
    with pytest.raises(ValueError, match='frozen_stages'):
        _build(MINI, frozen_stages=4)
    with pytest.raises(ValueError, match='arch'):
        _build(dict(MINI, arch='huge'))
    with pytest.raises(TypeError, match="prefix='backbone.'"):
        _build(MINI, checkpoint='r.pth')


def _recognizer_checkpoint(path, seed=3, backbone=MINI):
    """An mmaction2 recognizer's state: the full 4-stage Swin under
    ``backbone.`` + a classification head."""
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        full = MODELS.build(copy.deepcopy(backbone))
    for p in full.parameters():
        p.data.normal_()
    state = {f'backbone.{k}': v for k, v in full.state_dict().items()}
    state['cls_head.fc_cls.weight'] = torch.randn(400, 64)
    torch.save(dict(state_dict=state), path)
    return full.state_dict()


def test_init_cfg_pretrained_loads_a_recognizer_checkpoint(tmp_path):
    path = osp.join(tmp_path, 'swin_recognizer.pth')
    ref = _recognizer_checkpoint(path)
    assert any(k.startswith('layers.3.') for k in ref)
    assert 'norm3.weight' in ref
    model = _build(
        MINI,
        frozen_stages=1,
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    own = model.backbone.state_dict()
    for key, value in own.items():
        if key.startswith('norm2.'):
            assert key not in ref  # not in a recognizer: keeps its init
            continue
        assert torch.equal(value, ref[key]), key
    result = model.load_pretrained(path, prefix='backbone.')
    assert result.missing_keys == ['norm2.weight', 'norm2.bias']
    assert result.unexpected_keys == []
    assert result.skipped_keys and all(
        k.startswith(('layers.3.', 'layers.2.downsample.', 'norm3.'))
        for k in result.skipped_keys)
    model.train()
    assert not model.backbone.layers[0].training


def test_checkpoint_of_another_arch_is_refused(tmp_path):
    path = osp.join(tmp_path, 'other.pth')
    other = dict(MINI, arch=dict(embed_dims=16, depths=[1, 1, 2, 1],
                                 num_heads=[1, 2, 2, 4]))
    _recognizer_checkpoint(path, backbone=other)
    model = _build(MINI)
    with pytest.raises(PretrainedMismatchError, match='has shape'):
        model.load_pretrained(path, prefix='backbone.')
    with pytest.raises(PretrainedMismatchError, match="prefix='backbone.'"):
        model.load_pretrained(path)
