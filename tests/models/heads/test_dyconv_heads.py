# Copyright (c) cmdyseg contributors. All rights reserved.
"""The four heads of Table 3: shapes, gradients, text dependence, init."""
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

from cmdyseg.models.heads import (CMDyConvHead, DCMDyConvHead, DyConvHead,
                                  GroupDyConvHead)
from cmdyseg.models.layers import available_cmdyconv_backends

B, C, D_T, G, H, W = 2, 16, 12, 4, 8, 9

HEADS = [
    (DyConvHead, dict(num_modules=1)),
    (DyConvHead, dict(num_modules=2)),
    (GroupDyConvHead, dict(num_modules=3)),
    (CMDyConvHead, dict(num_modules=3)),
    (CMDyConvHead, dict(num_modules=2, kv_per_group=True)),
    (DCMDyConvHead, dict(num_modules=3)),
    (DCMDyConvHead, dict(num_modules=2, offset_groups=G, kv_per_group=True)),
    (GroupDyConvHead, dict(num_modules=2, coord_kernel=True)),
    (DCMDyConvHead, dict(num_modules=2, kv_per_group=True, coord_kernel=True)),
]
IDS = [f'{cls.__name__}-{i}' for i, (cls, _) in enumerate(HEADS)]


def _build(cls, **kwargs):
    torch.manual_seed(0)
    return cls(in_channels=C, text_channels=D_T, groups=G, **kwargs)


def _inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(B, C, H, W, generator=gen),
            torch.randn(B, D_T, generator=gen))


def _randomise_offsets(head, scale=0.3):
    """Offset branches start at zero; give them weights so that the
    deformable path is exercised."""
    gen = torch.Generator().manual_seed(1)
    for block in head.blocks:
        conv = block.offset_conv
        with torch.no_grad():
            conv.weight.copy_(
                scale * torch.randn(conv.weight.shape, generator=gen))
            conv.bias.copy_(scale * torch.randn(conv.bias.shape,
                                                generator=gen))


@pytest.mark.parametrize('cls,kwargs', HEADS, ids=IDS)
def test_shape_and_every_parameter_gets_gradient(cls, kwargs):
    head = _build(cls, **kwargs)
    head.train()
    visual, text = _inputs()
    visual.requires_grad_(True)
    text.requires_grad_(True)
    out = head(visual, text)
    assert out.shape == (B, 1, H, W)
    assert torch.isfinite(out).all()
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    (out * weight).sum().backward()
    params = dict(head.named_parameters())
    assert params, 'head has no parameters'
    for name, p in params.items():
        assert p.requires_grad, name
        assert p.grad is not None, f'{name} got no gradient'
        assert p.grad.abs().max() > 0, f'{name} got a zero gradient'
    assert visual.grad.abs().max() > 0 and text.grad.abs().max() > 0


@pytest.mark.parametrize('cls,kwargs', HEADS, ids=IDS)
def test_output_depends_on_text_per_sample(cls, kwargs):
    head = _build(cls, **kwargs)
    if cls is DCMDyConvHead:
        _randomise_offsets(head)
    head.eval()
    visual, text = _inputs()
    with torch.no_grad():
        out = head(visual, text)
        other = text.clone()
        other[1] = torch.randn(D_T, generator=torch.Generator().manual_seed(9))
        out2 = head(visual, other)
    # sample 1's response changes, sample 0's does not (no batch leakage)
    assert (out[1] - out2[1]).abs().max() > 1e-4
    torch.testing.assert_close(out[0], out2[0])


def test_block_structure():
    cm = _build(CMDyConvHead, num_modules=3)
    assert len(cm.blocks) == 3
    assert [b.last for b in cm.blocks] == [False, False, True]
    assert cm.blocks[0].kv_conv.out_channels == C * 9  # per channel
    assert cm.blocks[0].pointwise.in_channels == G + 8
    assert cm.blocks[0].pointwise.out_channels == C
    assert cm.blocks[-1].pointwise.out_channels == 1
    assert cm.blocks[0].offset_conv is None
    grp = _build(CMDyConvHead, kv_per_group=True)
    assert grp.blocks[0].kv_conv.out_channels == G * 9
    dcm = _build(DCMDyConvHead, offset_groups=G)
    assert dcm.blocks[0].offset_conv.out_channels == G * 18
    dcm1 = _build(DCMDyConvHead)
    assert dcm1.blocks[0].offset_conv.out_channels == 18
    nocoord = _build(GroupDyConvHead, coord_channels=0)
    assert nocoord.blocks[0].pointwise.in_channels == G


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='groups=5'):
        CMDyConvHead(C, D_T, groups=5)
    with pytest.raises(ValueError, match='offset_groups=2'):
        DCMDyConvHead(C, D_T, groups=G, offset_groups=2)
    with pytest.raises(ValueError, match='coord_channels=3'):
        GroupDyConvHead(C, D_T, groups=G, coord_channels=3)
    head = _build(CMDyConvHead)
    visual, text = _inputs()
    with pytest.raises(ValueError, match=r'text must be \(B, D_T\)'):
        head(visual, text[:, :5])
    with pytest.raises(ValueError, match='visual must be'):
        head(visual[:, :8], text)


def test_dcmdyconv_offsets_zero_initialised_and_init_cfg_honoured():
    head = DCMDyConvHead(
        C,
        D_T,
        groups=G,
        init_cfg=dict(type='Normal', std=1.0, bias=0.5, layer='Conv2d'))
    kv_before = head.blocks[0].kv_conv.weight.detach().clone()
    head.init_weights()
    for block in head.blocks:
        assert block.offset_conv.weight.abs().max() == 0
        assert block.offset_conv.bias.abs().max() == 0
    # the head's init_cfg reached the other convs
    kv_after = head.blocks[0].kv_conv.weight
    assert not torch.equal(kv_before, kv_after)
    assert torch.all(head.blocks[0].kv_conv.bias == 0.5)
    assert kv_after.std() > 0.5  # N(0, 1), not PyTorch's default uniform

    # zero offsets: exactly the CMDyConv head with the same weights
    cm = CMDyConvHead(C, D_T, groups=G)
    cm.load_state_dict({
        k: v
        for k, v in head.state_dict().items() if 'offset_conv' not in k
    })
    head.eval()
    cm.eval()
    visual, text = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(head(visual, text), cm(visual, text))
        _randomise_offsets(head)
        assert (head(visual, text) - cm(visual, text)).abs().max() > 1e-4


@pytest.mark.skipif(
    'mmcv' not in available_cmdyconv_backends(),
    reason='mmcv compiled ops (mmcv.ops.modulated_deform_conv2d) do not '
    'import')
@pytest.mark.parametrize('kwargs', [{}, dict(offset_groups=G)])
def test_head_backends_agree(kwargs):
    """float64, so that the comparison is not lost in float32 rounding
    amplified by the batch norms (the op itself is compared in float32 in
    tests/models/layers)."""
    heads = {}
    for backend in ('torch', 'mmcv'):
        heads[backend] = _build(DCMDyConvHead, backend=backend, **kwargs)
        _randomise_offsets(heads[backend])
        heads[backend].double()
    visual, text = (t.double() for t in _inputs())
    outs = {k: h(visual, text) for k, h in heads.items()}
    torch.testing.assert_close(
        outs['torch'], outs['mmcv'], rtol=1e-9, atol=1e-10)
    grads = {}
    for k, out in outs.items():
        out.sum().backward()
        grads[k] = {n: p.grad for n, p in heads[k].named_parameters()}
    for name in grads['torch']:
        torch.testing.assert_close(
            grads['torch'][name],
            grads['mmcv'][name],
            rtol=1e-8,
            atol=1e-10,
            msg=lambda m: f'{name}: {m}')


def test_build_from_another_scope(tmp_path):
    """An outside mmlab project: root registry, no default scope, only
    ``custom_imports`` to find cmdyseg."""
    repo = osp.dirname(osp.dirname(osp.dirname(osp.dirname(__file__))))
    models_init = osp.join(repo, 'cmdyseg', 'models', '__init__.py')
    # cmdyseg.models is the documented import; until its __init__ exists
    # the heads package is imported directly
    module = ('cmdyseg.models'
              if osp.exists(models_init) else 'cmdyseg.models.heads')
    cfg_file = tmp_path / 'outside_cfg.py'
    cfg_file.write_text(
        textwrap.dedent(f"""\
        custom_imports = dict(imports=['{module}'],
                              allow_failed_imports=False)
        model = dict(type='cmdyseg.CMDyConvHead', in_channels={C},
                     text_channels={D_T}, groups={G}, num_modules=2,
                     backend='torch')
        """))
    script = textwrap.dedent(f"""\
        import sys
        import torch
        from mmengine import Config
        from mmengine.registry import MODELS, DefaultScope
        assert 'cmdyseg' not in sys.modules
        cfg = Config.fromfile({str(cfg_file)!r})
        assert DefaultScope.get_current_instance() is None
        head = MODELS.build(cfg.model)
        out = head(torch.randn(2, {C}, 6, 7), torch.randn(2, {D_T}))
        print(type(head).__module__, type(head).__name__, tuple(out.shape))
        """)
    res = subprocess.run([sys.executable, '-c', script],
                         capture_output=True,
                         text=True,
                         cwd=str(tmp_path),
                         timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split()[-6:] == [
        'cmdyseg.models.heads.cmdyconv_head', 'CMDyConvHead', '(2,', '1,',
        '6,', '7)'
    ], res.stdout


@pytest.mark.parametrize('cls', [DyConvHead, GroupDyConvHead, CMDyConvHead,
                                 DCMDyConvHead])
def test_refine_runs_blocks_pooled_and_refines_at_input_size(cls):
    import torch.nn.functional as F
    head = _build(cls, num_modules=2, refine=dict(scale=2, channels=5))
    plain = _build(cls, num_modules=2)
    plain.load_state_dict({k: v for k, v in head.state_dict().items()
                           if not k.startswith('refiner.')})
    head.init_weights()
    torch.manual_seed(1)
    visual = torch.randn(B, C, 8, 10)
    text = torch.randn(B, D_T)
    coarse = plain(F.avg_pool2d(visual, 2), text)
    up = F.interpolate(coarse, size=(8, 10), mode='bilinear',
                       align_corners=False)
    # an untrained refiner is the identity on the upsampled response
    # (init_weights keeps the last conv at zero)
    out = head(visual, text)
    assert out.shape == (B, 1, 8, 10)
    torch.testing.assert_close(out, up)
    # by hand, with weights
    ref = head.refiner
    with torch.no_grad():
        ref.conv2.weight.normal_()
        ref.conv2.bias.normal_()
    k = torch.tanh(ref.text_fc(text))[:, :, None, None]
    hid = F.relu(ref.conv1(torch.cat([up, visual * k], 1)))
    torch.testing.assert_close(head(visual, text), up + ref.conv2(hid))
    # the refinement reads the sentence: another text, another edge
    out2 = head(visual, torch.randn(B, D_T))
    assert not torch.allclose(out2, head(visual, text))
    head(visual, text).sum().backward()
    assert ref.conv1.weight.grad is not None
    with pytest.raises(ValueError, match='divisible by refine scale=2'):
        head(torch.randn(B, C, 7, 10), text)
    for bad in (dict(scale=1), dict(size=3), 2):
        with pytest.raises(ValueError, match='refine'):
            _build(cls, refine=bad)


@pytest.mark.parametrize('cls', [GroupDyConvHead, CMDyConvHead,
                                 DCMDyConvHead])
def test_coord_kernel_lets_the_sentence_weight_the_coordinates(cls):
    from cmdyseg.models.layers import coord_features
    zero = torch.zeros(B, C, H, W)
    text = torch.randn(B, D_T, generator=torch.Generator().manual_seed(3))
    # eq. 8: with no visual signal one block's response is P([0, C]), the
    # same map whatever the sentence
    plain = _build(cls, num_modules=1).eval()
    with torch.no_grad():
        out = plain(zero, text)
    torch.testing.assert_close(out[0], out[1])
    head = _build(cls, num_modules=1, coord_kernel=True).eval()
    block = head.blocks[0]
    assert block.coord_fc.out_features == 8
    with torch.no_grad():
        out = head(zero, text)
        kc = torch.tanh(block.coord_fc(text))[:, :, None, None]
        coords = coord_features(B, H, W, 8)
        g = torch.zeros(B, G, H, W)
        ref = block.pointwise(torch.cat([g, kc * coords], 1))
    torch.testing.assert_close(out, ref)
    # another sentence, another position map
    assert (out[0] - out[1]).abs().max() > 1e-3
    # nothing to weight without coordinate channels
    assert _build(cls, coord_channels=0,
                  coord_kernel=True).blocks[0].coord_fc is None
