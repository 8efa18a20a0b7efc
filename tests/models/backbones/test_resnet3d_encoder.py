# Copyright (c) cmdyseg contributors. All rights reserved.
import copy
import os.path as osp

import numpy as np
import pytest
import torch

import cmdyseg  # noqa: F401  (compatibility fixes before mmaction)

pytest.importorskip('mmcv', reason='mmaction2 needs mmcv')
pytest.importorskip('mmaction.models', reason='needs mmaction2')

from cmdyseg.models.backbones.resnet3d_encoder import \
    ResNet3dEncoder  # noqa: E402
from cmdyseg.registry import MODELS  # noqa: E402

# I3D-R18 inflation with temporal stride 1 in the stem (the tiny config):
# an 8-frame clip keeps T' = 4 after layer1's temporal pooling.
I3D_R18 = dict(
    type='mmaction.ResNet3d',
    depth=18,
    pretrained=None,
    conv1_kernel=(5, 7, 7),
    conv1_stride_t=1,
    pool1_stride_t=1,
    inflate=((1, 1), (1, 0), (1, 0), (0, 1)),
    zero_init_residual=False)

# mmaction2's i3d_r50 backbone, weights switched off.
I3D_R50 = dict(
    type='mmaction.ResNet3d',
    depth=50,
    pretrained=None,
    pretrained2d=True,
    conv1_kernel=(5, 7, 7),
    conv1_stride_t=2,
    pool1_stride_t=2,
    inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
    zero_init_residual=False)


def _build(backbone=I3D_R18, **kwargs):
    return MODELS.build(
        dict(type='ResNet3dEncoder', backbone=copy.deepcopy(backbone),
             **kwargs))


def test_builds_mmaction_resnet3d_cut_at_layer3():
    from mmaction.models.backbones import ResNet3d
    model = _build()
    assert isinstance(model, ResNet3dEncoder)
    assert isinstance(model.backbone, ResNet3d)
    assert model.backbone.res_layers == ['layer1', 'layer2', 'layer3']
    assert not hasattr(model.backbone, 'layer4')
    assert model.out_channels == 256


def test_r18_shapes_and_unit_norm_static():
    torch.manual_seed(0)
    model = _build()
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        feat, static = model(x)
    assert feat.shape == (1, 256, 4, 4, 4)
    assert static.shape == (1, 256, 4, 4)
    norms = static.norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    # static is the L2-normalised temporal mean of feat
    mean = feat.mean(2)
    torch.testing.assert_close(static * mean.norm(dim=1, keepdim=True), mean)
    # without l2_norm: the plain temporal mean
    model.l2_norm = False
    with torch.no_grad():
        _, raw = model(x)
    torch.testing.assert_close(raw, mean)
    with pytest.raises(ValueError, match=r'\(B, 3, T, H, W\)'):
        model(torch.randn(1, 8, 3, 64, 64))


def test_r50_i3d_shapes():
    torch.manual_seed(0)
    model = _build(I3D_R50)
    assert model.out_channels == 1024
    model.eval()
    with torch.no_grad():
        feat, static = model(torch.randn(1, 3, 8, 64, 64))
    # temporal stride 8 (stem conv, stem pool, pool2), spatial stride 16
    assert feat.shape == (1, 1024, 1, 4, 4)
    assert static.shape == (1, 1024, 4, 4)
    torch.testing.assert_close(static.norm(dim=1), torch.ones(1, 4, 4))


def _frozen_and_free(model):
    bb = model.backbone
    frozen = [bb.conv1, bb.layer1, bb.layer2]
    return frozen, bb.layer3


def test_frozen_stages_and_gradients():
    torch.manual_seed(1)
    model = _build(frozen_stages=2)
    model.init_weights()
    model.train()
    frozen, free = _frozen_and_free(model)
    for module in frozen:
        assert all(not m.training for m in module.modules())
        assert all(not p.requires_grad for p in module.parameters())
    assert all(m.training for m in free.modules())
    assert all(p.requires_grad for p in free.parameters())
    assert model.training

    stats = {
        k: v.clone()
        for k, v in model.backbone.state_dict().items()
        if 'running_mean' in k
    }
    feat, static = model(torch.randn(2, 3, 8, 32, 32))
    g1 = torch.randn_like(feat)
    g2 = torch.randn_like(static)
    ((feat * g1).sum() + (static * g2).sum()).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    n_free = sum(p.requires_grad for p in model.parameters())
    assert n_free == len(list(free.parameters())) > 0
    # frozen BatchNorm keeps its statistics, layer3's BatchNorm updates them
    new = model.backbone.state_dict()
    for key, old in stats.items():
        changed = not torch.equal(new[key], old)
        assert changed == key.startswith('layer3.'), key


@pytest.mark.parametrize('frozen_stages', [-1, 0, 3])
def test_other_frozen_stages(frozen_stages):
    model = _build(frozen_stages=frozen_stages).train()
    bb = model.backbone
    stages = [bb.conv1, bb.layer1, bb.layer2, bb.layer3]
    for i, module in enumerate(stages):
        frozen = i <= frozen_stages
        assert all(p.requires_grad != frozen for p in module.parameters())
        assert module.training != frozen


def test_bad_configs():
    with pytest.raises(ValueError, match='frozen_stages'):
        _build(frozen_stages=4)
    with pytest.raises(ValueError, match='frozen_stages'):
        _build(dict(I3D_R18, frozen_stages=1))
    with pytest.raises(ValueError, match='num_stages'):
        _build(dict(I3D_R18, num_stages=4))
    with pytest.raises(
            ValueError,
            match=r"init_cfg=dict\(type='Pretrained', checkpoint='x.pth', "
            r"prefix='backbone.'\)"):
        _build(dict(I3D_R18, pretrained='x.pth', pretrained2d=False))
    # mmaction2's ResNet3d.init_weights would silently ignore it
    with pytest.raises(ValueError, match='backbone.init_cfg is ignored'):
        _build(dict(I3D_R18, init_cfg=dict(type='Kaiming', layer='Conv3d')))
    # 4-entry per-stage settings of the full network are accepted
    model = _build(dict(I3D_R18, spatial_strides=(1, 2, 2, 2)))
    assert model.backbone.spatial_strides == (1, 2, 2)


def test_checkpoint_argument_is_removed():
    with pytest.raises(
            TypeError,
            match=r"no longer takes checkpoint=.*init_cfg=dict\(type="
            r"'Pretrained', checkpoint='r.pth', prefix='backbone.'\)"):
        _build(checkpoint='r.pth')
    with pytest.raises(TypeError, match="init_cfg=dict\\(type='Pretrained'"):
        ResNet3dEncoder(copy.deepcopy(I3D_R18), checkpoint=None)
    with pytest.raises(TypeError, match='unexpected keyword.*pretrained'):
        ResNet3dEncoder(copy.deepcopy(I3D_R18), pretrained='x.pth')


# Tiny widths keep the recognizer checkpoints the tests write small.
TINY_R18 = dict(I3D_R18, base_channels=8)
TINY_R50 = dict(I3D_R50, base_channels=8)


def _full_recognizer_state(seed, backbone=TINY_R18):
    """state_dict of an mmaction2 recognizer: a full 4-stage ResNet3d under
    ``backbone.`` + a classification head."""
    torch.manual_seed(seed)
    full = MODELS.build(copy.deepcopy(backbone))
    full.init_weights()
    for m in full.modules():  # non-trivial BatchNorm statistics too
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_()
    state = {f'backbone.{k}': v for k, v in full.state_dict().items()}
    state['cls_head.fc_cls.weight'] = torch.randn(400, full.feat_dim)
    state['cls_head.fc_cls.bias'] = torch.randn(400)
    return full, state


def _pretrained(path, prefix='backbone.'):
    return dict(type='Pretrained', checkpoint=path, prefix=prefix)


@pytest.mark.parametrize('arch', [TINY_R18, TINY_R50], ids=['r18', 'r50'])
def test_init_cfg_pretrained_loads_recognizer_backbone(tmp_path, arch):
    full, state = _full_recognizer_state(seed=5, backbone=arch)
    assert any(k.startswith('backbone.layer4.') for k in state)
    path = osp.join(tmp_path, 'recognizer.pth')
    torch.save(dict(meta=dict(epoch=3), state_dict=state), path)

    torch.manual_seed(6)
    model = _build(arch, init_cfg=_pretrained(path))
    ref = full.state_dict()
    assert not torch.equal(model.backbone.layer3[0].conv1.conv.weight,
                           ref['layer3.0.conv1.conv.weight'])
    model.init_weights()
    loaded = model.backbone.state_dict()
    assert set(loaded) <= set(ref)
    for key, value in loaded.items():
        assert torch.equal(value, ref[key]), key
    # frozen flags and modes survive loading
    model.train()
    for module in _frozen_and_free(model)[0]:
        assert all(not p.requires_grad for p in module.parameters())
        assert not module.training
    assert all(p.requires_grad for p in model.backbone.layer3.parameters())


def test_load_pretrained_reports_skipped_missing_unexpected(tmp_path):
    _, state = _full_recognizer_state(seed=5)
    path = osp.join(tmp_path, 'recognizer.pth')
    torch.save(dict(state_dict=state), path)
    model = _build(TINY_R18)
    result = model.load_pretrained(path, prefix='backbone.')
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert result.skipped_keys and all(
        k.startswith('layer4.') for k in result.skipped_keys)
    assert result.loaded == len([
        k for k in model.backbone.state_dict()
        if not k.endswith('num_batches_tracked')
    ])

    # a missing tensor and a foreign one are reported, not fatal
    del state['backbone.layer2.0.conv1.conv.weight']
    state['backbone.extra.weight'] = torch.zeros(1)
    # DataParallel's 'module.' is ignored
    torch.save(dict(state_dict={f'module.{k}': v
                                for k, v in state.items()}), path)
    result = model.load_pretrained(path, prefix='backbone')  # '.' added
    assert result.missing_keys == ['layer2.0.conv1.conv.weight']
    assert result.unexpected_keys == ['extra.weight']


def test_other_init_cfg_types_apply_after_mmaction_init(tmp_path):
    # ResNet3d.init_weights re-initialises every conv and BN; the encoder's
    # own init_cfg must still win over it
    model = _build(TINY_R18, init_cfg=[
        dict(type='Constant', layer='Conv3d', val=0.5),
        dict(type='Constant', layer='BatchNorm3d', val=2.0, bias=0.25)
    ])
    model.init_weights()
    bb = model.backbone
    assert torch.all(bb.conv1.conv.weight == 0.5)
    assert torch.all(bb.layer3[0].conv2.conv.weight == 0.5)
    assert torch.all(bb.layer2[1].conv1.bn.weight == 2.0)
    assert torch.all(bb.layer2[1].conv1.bn.bias == 0.25)
    # without init_cfg: mmaction2's scheme (BN weight 1, Kaiming convs)
    plain = _build(TINY_R18)
    plain.init_weights()
    assert torch.all(plain.backbone.layer2[1].conv1.bn.weight == 1)
    # Pretrained comes last, over the other entries
    full, state = _full_recognizer_state(seed=3)
    path = osp.join(tmp_path, 'recognizer.pth')
    torch.save(dict(state_dict=state), path)
    both = _build(TINY_R18, init_cfg=[
        _pretrained(path),
        dict(type='Constant', layer='Conv3d', val=0.5)
    ])
    both.init_weights()
    torch.testing.assert_close(both.backbone.conv1.conv.weight,
                               full.conv1.conv.weight, rtol=0, atol=0)


def test_checkpoint_without_backbone_keys(tmp_path):
    path = osp.join(tmp_path, 'head_only.pth')
    torch.save(dict(state_dict={'cls_head.fc_cls.weight': torch.zeros(2)}),
               path)
    model = _build(TINY_R18, init_cfg=_pretrained(path))
    with pytest.raises(
            ValueError,
            match=r"head_only.pth holds no 'backbone.\*' weights.*"
            r'cls_head.fc_cls.weight'):
        model.init_weights()


def test_recognizer_checkpoint_without_prefix_is_refused(tmp_path):
    _, state = _full_recognizer_state(seed=5)
    path = osp.join(tmp_path, 'recognizer.pth')
    torch.save(dict(state_dict=state), path)
    model = _build(TINY_R18, init_cfg=_pretrained(path, prefix=None))
    with pytest.raises(
            ValueError,
            match=r"recognizer.pth holds 0 of the \d+ tensors.*"
            r"try init_cfg prefix='backbone.'"):
        model.init_weights()


def test_checkpoint_of_another_network_is_refused(tmp_path):
    from cmdyseg.models.backbones.pretrained import PretrainedMismatchError

    # a 2-D torchvision-style ResNet under 'backbone.': none of the names
    # match, which mmengine's strict=False PretrainedInit would only log
    path = osp.join(tmp_path, 'resnet2d.pth')
    torch.save(
        dict(state_dict={
            'backbone.conv1.weight': torch.zeros(8, 3, 7, 7),
            'backbone.bn1.weight': torch.ones(8),
            'backbone.layer1.0.conv1.weight': torch.zeros(8, 8, 3, 3),
        }), path)
    model = _build(TINY_R18, init_cfg=_pretrained(path))
    with pytest.raises(PretrainedMismatchError,
                       match=r'resnet2d.pth holds 0 of the \d+ tensors.*'
                       r'the checkpoint has conv1.weight, bn1.weight'):
        model.init_weights()

    # too few: only the stem of the right network
    _, state = _full_recognizer_state(seed=5)
    stem = {k: v for k, v in state.items() if k.startswith('backbone.conv1')}
    path = osp.join(tmp_path, 'stem_only.pth')
    torch.save(dict(state_dict=stem), path)
    with pytest.raises(
            PretrainedMismatchError,
            match=r'stem_only.pth holds \d+ of the \d+ tensors .*'
            r'at least 50% are needed.*missing e.g. layer1'):
        _build(TINY_R18).load_pretrained(path, prefix='backbone.')


def test_checkpoint_shape_mismatch_names_file(tmp_path):
    _, state = _full_recognizer_state(seed=7)
    path = osp.join(tmp_path, 'r18.pth')
    torch.save(dict(state_dict=state), path)
    wider = _build(dict(TINY_R18, base_channels=16),
                   init_cfg=_pretrained(path))
    with pytest.raises(ValueError,
                       match=r'r18.pth: conv1.conv.weight has shape '
                       r'\(8, 3, 5, 7, 7\), the module expects '
                       r'\(16, 3, 5, 7, 7\)'):
        wider.init_weights()


@pytest.mark.parametrize('arch,stem,layer1', [(I3D_R18, 64, 64),
                                              (I3D_R50, 64, 256)])
def test_skips_add_early_maps_averaged_over_time(arch, stem, layer1):
    torch.manual_seed(0)
    plain = _build(arch)
    model = _build(arch, skips=('layer1', 'conv1'))
    model.load_state_dict(plain.state_dict())
    assert plain.skip_channels == ()
    assert model.skip_channels == (layer1, stem)
    assert _build(arch, skips='layer1').skip_channels == (layer1, )
    model.eval()
    plain.eval()
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        feat, static, low, stem_map = model(x)
        feat0, static0 = plain(x)
        # by hand: the stem conv, then layer1 after the temporal pool2
        bb = model.backbone
        c1 = bb.conv1(x)
        l1 = bb.layer1(bb.maxpool(c1))
        if bb.with_pool2:
            l1 = bb.pool2(l1)
    # the pair is unchanged; the maps come in the order asked for
    torch.testing.assert_close(feat, feat0)
    torch.testing.assert_close(static, static0)
    assert low.shape == (1, layer1, 16, 16)
    assert stem_map.shape == (1, stem, 32, 32)
    torch.testing.assert_close(low, l1.mean(2))
    torch.testing.assert_close(stem_map, c1.mean(2))
    # skip_time: the same maps before the temporal mean
    timed = _build(arch, skips=('layer1', 'conv1'), skip_time=True)
    timed.load_state_dict(plain.state_dict())
    timed.eval()
    with torch.no_grad():
        _, _, low_t, stem_t = timed(x)
    torch.testing.assert_close(low_t, l1)
    torch.testing.assert_close(stem_t, c1)
    with pytest.raises(ValueError, match='skips= adds earlier maps'):
        _build(dict(I3D_R18, out_indices=(0, 2)))
    for bad in (('layer2', ), ('conv1', 'conv1')):
        with pytest.raises(ValueError, match='must name distinct maps'):
            _build(arch, skips=bad)


# the tiny config's stem and layer1: every step its frame's own up to
# layer1's temporal pool2, the stem mixing 3 frames
TINY_STEM = dict(I3D_R18, conv1_kernel=(3, 7, 7),
                 inflate=((0, 0), (1, 0), (1, 0)))
# the main job's 2-D encoder: no kernel mixes frames (no time padding)
TWO_D_STEM = dict(I3D_R18, conv1_kernel=(1, 7, 7),
                  inflate=((0, 0), (0, 0), (0, 0)))


@pytest.mark.parametrize('stem', [TINY_STEM, TWO_D_STEM],
                         ids=['i3d-stem', '2d-stem'])
@pytest.mark.parametrize('num_frames', [8, 6, 16, 3])
@pytest.mark.parametrize('skips', [('layer1', 'conv1'), ('conv1', ),
                                   ('layer1', )])
def test_centre_pass_gives_the_early_maps_centre_steps(num_frames, skips,
                                                       stem):
    """forward(x, centre_only=True): each early map's step T_s // 2, from
    the stem on the one or two steps it needs (zero padding at the clip's
    ends where the clip has it: num_frames 3 reaches them)."""
    torch.manual_seed(0)
    model = _build(stem, skips=skips, skip_time=True)
    for m in model.modules():  # BatchNorm statistics that matter
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    assert model.centre_support() is None
    x = torch.randn(2, 3, num_frames, 32, 32)
    with torch.no_grad():
        maps = model(x)[2:]
        centres = model(x, centre_only=True)
    assert len(centres) == len(skips)
    for name, full, got in zip(skips, maps, centres):
        assert got.shape == full.shape[:2] + full.shape[3:], name
        torch.testing.assert_close(got, full[:, :, full.shape[2] // 2],
                                   rtol=1e-5, atol=1e-5)
        if full.shape[2] > 1:  # not a map any step would give
            assert not torch.allclose(got, full[:, :, 0], atol=1e-3), name


@pytest.mark.parametrize('arch,kwargs,why', [
    (TINY_STEM, dict(skips=()), 'no early maps'),
    (TINY_STEM, dict(skips=('conv1', )), 'skip_time=False'),
    (I3D_R18, dict(skips=('layer1', ), skip_time=True),
     'layer1 is inflated in time'),
    (I3D_R50, dict(skips=('conv1', ), skip_time=True),
     'not temporally stride 1'),
    (dict(TINY_STEM, pool1_stride_t=2), dict(skips=('conv1', ),
                                             skip_time=True),
     'pool1 mixes or skips frames'),
])
def test_centre_pass_refuses_what_it_cannot_compute(arch, kwargs, why):
    model = _build(arch, **kwargs)
    assert why in model.centre_support()
    with pytest.raises(ValueError, match='cannot be computed per frame: '
                       '.*' + why):
        model(torch.zeros(1, 3, 8, 32, 32), centre_only=True)


def _with_bn_statistics(model):
    for m in model.modules():  # BatchNorm statistics that matter
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize('skips', [('layer1', 'conv1'), ()])
@pytest.mark.parametrize('pool2', [True, False])
def test_forward_windows_equals_the_clips(skips, pool2):
    """forward_windows (each frame's stem / layer1 once, each layer3 step
    once, a cache across calls) gives forward's outputs on the stacked
    clips, for the sliding windows of a video with its repeated border
    frames, in batches, with and without pool2."""
    from cmdyseg.datasets.transforms import clip_indices
    from cmdyseg.models.backbones.resnet3d_encoder import FrameCache
    torch.manual_seed(0)
    model = _with_bn_statistics(
        _build(dict(TWO_D_STEM, with_pool2=pool2), skips=skips,
               skip_time=bool(skips)))
    assert model.frame_support() is None
    num = 13
    frames = torch.randn(num, 3, 32, 32)
    windows = clip_indices(np.arange(num), num, 8)
    loaded = []

    def load(idx):
        loaded.extend(idx.tolist())
        return frames[idx][:, :, None]

    cache = FrameCache()
    with torch.no_grad():
        want = model(frames[windows].transpose(1, 2))
        got = []
        for start in range(0, num, 4):
            cache.forget(before=int(windows[start:start + 4].min()))
            got.append(model.forward_windows(load, windows[start:start + 4],
                                             cache))
    got = [torch.cat(parts) for parts in zip(*got)]
    assert len(got) == len(want) == 2 + len(skips)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    # every frame through the stem once
    assert sorted(loaded) == list(range(num))
    # forget() dropped what the last batch does not read
    assert min(cache.frames) == int(windows[12:].min())


@pytest.mark.parametrize('arch,why', [
    (TINY_STEM, 'conv1.conv mixes or skips frames'),
    (dict(TWO_D_STEM, inflate=((0, 0), (1, 0), (0, 0))),
     'layer2.0.conv1.conv mixes or skips frames'),
    (dict(TWO_D_STEM, pool1_stride_t=2), 'its pool1 mixes or skips frames'),
])
def test_forward_windows_refuses_encoders_that_mix_frames(arch, why):
    model = _build(arch, skips=('layer1', ), skip_time=True).eval()
    assert why in model.frame_support()
    with pytest.raises(ValueError, match='cannot share their frames'):
        model.forward_windows(lambda idx: None, np.zeros((1, 8), int))


def test_forward_windows_is_refused_in_training_mode():
    model = _build(TWO_D_STEM, skips=('layer1', ), skip_time=True).train()
    with pytest.raises(ValueError, match='eval mode only'):
        model.forward_windows(lambda idx: None, np.zeros((1, 8), int))


def test_forward_windows_centre_only_gives_the_centre_pass():
    """centre_only=True: the early maps' centre steps, gathered from the
    shared frames, as forward(x, centre_only=True) computes them."""
    torch.manual_seed(0)
    model = _with_bn_statistics(
        _build(TWO_D_STEM, skips=('layer1', 'conv1'), skip_time=True))
    frames = torch.randn(10, 3, 32, 32)
    windows = np.stack([np.clip(np.arange(t - 4, t + 4), 0, 9)
                        for t in range(10)])
    with torch.no_grad():
        want = model(frames[windows].transpose(1, 2), centre_only=True)
        got = model.forward_windows(lambda idx: frames[idx][:, :, None],
                                    windows, centre_only=True)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
