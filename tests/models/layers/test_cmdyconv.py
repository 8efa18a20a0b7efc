# Copyright (c) cmdyseg contributors. All rights reserved.
"""The CMDyConv operation against eq. 11 / 12 written out with loops."""
import pytest
import torch
from reference_ops import cmdyconv_inputs as _inputs
from reference_ops import cmdyconv_reference as reference_cmdyconv

from cmdyseg.models.layers import (available_cmdyconv_backends, cmdyconv,
                                   get_cmdyconv_backend)
from cmdyseg.models.layers.cmdyconv import MMCV_OPS

BACKENDS = ['cpp', 'torch', 'torch-autograd', 'mmcv']
requires_mmcv = pytest.mark.skipif(
    not MMCV_OPS.available,
    reason='mmcv compiled ops (mmcv.ops.modulated_deform_conv2d) do not '
    'import')


def _backend_or_skip(name):
    if name not in available_cmdyconv_backends():
        pytest.skip(f'backend {name!r} not available here (its compiled '
                    'ops do not import)')


def _grads(out, tensors, seed=1):
    gen = torch.Generator().manual_seed(seed)
    gout = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    return torch.autograd.grad(out, tensors, gout)


CASES = [
    # (C, G, per-channel kV, offset groups: 0 = none, 'G' = one per group)
    (16, 4, True, 0),
    (16, 4, False, 0),
    (16, 4, True, 1),
    (16, 4, True, 'G'),
    (16, 4, False, 1),
    (16, 4, False, 'G'),
]


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('c,g,per_channel,og', CASES)
def test_matches_written_out_reference(backend, c, g, per_channel, og):
    _backend_or_skip(backend)
    b, h, w = 2, 8, 9
    kvg = c if per_channel else g
    ogn = g if og == 'G' else og
    x, kt, kv, offset = _inputs(b, c, g, h, w, kvg, ogn, torch.float64)
    leaves = [x, kt, kv] + ([offset] if offset is not None else [])
    for t in leaves:
        t.requires_grad_(True)
    out = cmdyconv(x, kt, kv, offset, groups=g, backend=backend)
    ref = reference_cmdyconv(x, kt, kv, offset, g)
    assert out.shape == (b, g, h, w)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-10)

    grads = _grads(out, leaves)
    ref_grads = _grads(ref, leaves)
    for name, got, exp in zip(['x', 'kt', 'kv', 'offset'], grads, ref_grads):
        assert exp.abs().max() > 0, name
        torch.testing.assert_close(
            got, exp, rtol=1e-7, atol=1e-9, msg=lambda m: f'{name}: {m}')


@pytest.mark.parametrize('backend', BACKENDS)
def test_offsets_and_kv_matter(backend):
    """Guards against an op that ignores offsets or averages kV."""
    _backend_or_skip(backend)
    c, g = 16, 4
    x, kt, kv, offset = _inputs(2, c, g, 8, 8, c, 1, torch.float64, seed=3)
    with_off = cmdyconv(x, kt, kv, offset, groups=g, backend=backend)
    without = cmdyconv(x, kt, kv, None, groups=g, backend=backend)
    assert (with_off - without).abs().max() > 1e-2
    # per-channel kV differs from its group mean
    kv_mean = kv.view(2, g, c // g, 9, 8, 8).mean(2).view(2, g * 9, 8, 8)
    grouped = cmdyconv(x, kt, kv_mean, None, groups=g, backend=backend)
    assert (grouped - without).abs().max() > 1e-2
    # zero offsets are exactly the offset-free operation
    zero = cmdyconv(x, kt, kv, torch.zeros_like(offset), g, backend=backend)
    torch.testing.assert_close(zero, without, rtol=1e-12, atol=1e-12)


def test_torch_backend_gradcheck():
    x, kt, kv, offset = _inputs(1, 4, 2, 4, 4, 4, 2, torch.float64, seed=5)
    tensors = tuple(t.requires_grad_(True) for t in (x, kt, kv, offset))
    assert torch.autograd.gradcheck(
        lambda *a: cmdyconv(*a, groups=2, backend='torch'), tensors)


@requires_mmcv
@pytest.mark.parametrize('c,g,per_channel,og', CASES + [(32, 8, True, 1)])
@pytest.mark.parametrize('zero_offsets', [False, True])
def test_fast_backends_agree_with_mmcv_float32(c, g, per_channel, og,
                                               zero_offsets):
    """float32, forward and every gradient, to 1e-5; zero offsets are the
    state a zero-initialised offset branch starts from (samples exactly on
    pixels and at the border, where the offset gradient is one-sided)."""
    if zero_offsets and not og:
        pytest.skip('no offsets in this case')
    b, h, w = 2, 10, 12
    kvg = c if per_channel else g
    ogn = g if og == 'G' else og
    x, kt, kv, offset = _inputs(b, c, g, h, w, kvg, ogn, torch.float32, 7)
    if zero_offsets:
        offset = torch.zeros_like(offset)
    results = {}
    compared = [n for n in ('cpp', 'torch', 'torch-autograd')
                if n in available_cmdyconv_backends()]
    for backend in compared + ['mmcv']:
        leaves = [t.detach().clone().requires_grad_(True)
                  for t in (x, kt, kv, offset) if t is not None]
        out = cmdyconv(*leaves[:3], leaves[3] if offset is not None else None,
                       groups=g, backend=backend)
        results[backend] = (out, _grads(out, leaves))
    out_m, grads_m = results['mmcv']
    for backend in compared:
        out_t, grads_t = results[backend]
        torch.testing.assert_close(out_t, out_m, rtol=1e-5, atol=1e-5)
        for name, a, e in zip(['x', 'kt', 'kv', 'offset'], grads_t,
                              grads_m):
            torch.testing.assert_close(
                a, e, rtol=1e-5, atol=1e-5,
                msg=lambda m: f'{backend} {name}: {m}')


def test_dispatch():
    name, fn = get_cmdyconv_backend('torch')
    assert name == 'torch' and callable(fn)
    # CPU tensors: the compiled kernels when built, else the fast
    # pure-PyTorch path, whatever else imports
    cpu_choice = 'cpp' if 'cpp' in available_cmdyconv_backends() else 'torch'
    auto, _ = get_cmdyconv_backend('auto')
    assert auto == cpu_choice
    assert get_cmdyconv_backend('auto', torch.device('cpu'))[0] == cpu_choice
    with pytest.raises(KeyError, match='unknown CMDyConv backend'):
        get_cmdyconv_backend('nope')
    if not MMCV_OPS.available:
        with pytest.raises(RuntimeError, match='compiled ops'):
            get_cmdyconv_backend('mmcv')


def test_bad_shapes_are_named():
    x, kt, kv, offset = _inputs(1, 16, 4, 6, 6, 16, 1, torch.float32)
    with pytest.raises(ValueError, match='groups=5'):
        cmdyconv(x, kt, kv, offset, groups=5, backend='torch')
    with pytest.raises(ValueError, match='kt must be'):
        cmdyconv(x, kt[:, :8], kv, offset, groups=4, backend='torch')
    with pytest.raises(ValueError, match='kv must be'):
        cmdyconv(x, kt, kv[:, :10], offset, groups=4, backend='torch')
    with pytest.raises(ValueError, match='offset must be'):
        cmdyconv(x, kt, kv, offset[:, :9], groups=4, backend='torch')
