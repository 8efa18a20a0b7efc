# Copyright (c) cmdyseg contributors. All rights reserved.
"""The fast CMDyConv backends ('cpp', 'torch', 'triton') against eq. 11 /
12 written out with loops, and the device-aware dispatch.

The Triton kernels run in Triton's CPU interpreter here (TRITON_INTERPRET=1
is set below, before the kernels are imported, unless CUDA is present);
those tests are skipped when ``triton`` is not installed.
"""
import importlib
import importlib.util
import os

import pytest
import torch
from reference_ops import cmdyconv_inputs as _inputs
from reference_ops import cmdyconv_reference as reference_cmdyconv

from cmdyseg.models.layers import (AUTO_PRIORITY, available_cmdyconv_backends,
                                   cmdyconv, get_cmdyconv_backend)

# the module (the package attribute of that name is the function)
cmdyconv_module = importlib.import_module('cmdyseg.models.layers.cmdyconv')
cmdyconv_cpu = importlib.import_module('cmdyseg.models.layers.cmdyconv_cpu')


def _grads(out, tensors, seed=1):
    """Gradients for one random output gradient, drawn in float64 so that
    every dtype gets the same one."""
    gen = torch.Generator().manual_seed(seed)
    gout = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    return torch.autograd.grad(out, tensors, gout.to(out))


HAS_TRITON = importlib.util.find_spec('triton') is not None
if HAS_TRITON and not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')
requires_triton = pytest.mark.skipif(
    not HAS_TRITON,
    reason='triton is not installed (pip install -r requirements/tests.txt)')
TRITON_DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'

# (C, G, mask groups M, offset groups O); 'C' / 'G' stand for C and G
LAYOUTS = [
    (16, 4, 'C', 0),
    (16, 4, 'G', 0),
    (16, 4, 'C', 1),
    (16, 4, 'C', 'G'),
    (16, 4, 'G', 1),
    (16, 4, 'G', 'G'),
    (16, 4, 2, 1),  # mask groups spanning two groups (atomics in triton)
    (16, 4, 8, 'G'),  # two mask groups per group
    (16, 2, 'C', 'C'),  # one offset field per channel
    (12, 4, 'C', 2),  # N = 3: padded channel tile in triton
]


def _layout(c, g, mg, og):
    sizes = {'C': c, 'G': g}
    return sizes.get(mg, mg), sizes.get(og, og)


def _leaves(x, kt, kv, offset, dtype=None, device='cpu'):
    out = []
    for t in (x, kt, kv, offset):
        if t is None:
            out.append(None)
            continue
        t = t.detach().to(device)
        if dtype is not None:
            t = t.to(dtype)
        out.append(t.requires_grad_(True))
    return out


def _check_against_reference(backend, c, g, mg, og, dtype, tol, h=6, w=7,
                             device='cpu', zero_offsets=False):
    mgn, ogn = _layout(c, g, mg, og)
    x, kt, kv, offset = _inputs(2, c, g, h, w, mgn, ogn, torch.float64, 11)
    if zero_offsets:
        offset = torch.zeros_like(offset)
    ref_in = _leaves(x, kt, kv, offset)
    got_in = _leaves(x, kt, kv, offset, dtype, device)
    out = cmdyconv(*got_in, groups=g, backend=backend)
    assert out.shape == (2, g, h, w) and out.dtype == dtype
    ref = reference_cmdyconv(*ref_in, g)
    torch.testing.assert_close(out.double().cpu(), ref, **tol)
    leaves = [t for t in got_in if t is not None]
    grads = _grads(out, leaves)
    ref_grads = _grads(ref, [t for t in ref_in if t is not None])
    for name, a, e in zip(['x', 'kt', 'kv', 'offset'], grads, ref_grads):
        assert a.dtype == dtype, name
        assert e.abs().max() > 0, name
        torch.testing.assert_close(
            a.double().cpu(), e, **tol, msg=lambda m: f'{name}: {m}')


@pytest.mark.parametrize('c,g,mg,og', LAYOUTS)
def test_torch_backend_float64(c, g, mg, og):
    _check_against_reference('torch', c, g, mg, og, torch.float64,
                             dict(rtol=1e-9, atol=1e-10))


@pytest.mark.parametrize('backend',
                         ['cpp', 'torch', 'torch-autograd', 'mmcv'])
@pytest.mark.parametrize('c,g,mg,og', LAYOUTS[:4])
def test_float32_agrees_with_reference(backend, c, g, mg, og):
    """The acceptance tolerance: 1e-5 in float32, forward and backward,
    random offsets."""
    if backend not in available_cmdyconv_backends():
        pytest.skip(f'backend {backend!r} not available here')
    _check_against_reference(backend, c, g, mg, og, torch.float32,
                             dict(rtol=1e-5, atol=1e-5))


# --------------------------------------------------------------------------
# compiled CPU kernels ('cpp')
# --------------------------------------------------------------------------
WITH_OPS = os.environ.get('CMDYSEG_WITH_OPS', '1') != '0'
requires_ext = pytest.mark.skipif(
    not cmdyconv_cpu.EXTENSION.available,
    reason='the compiled extension is not built (CMDYSEG_WITH_OPS=0)')


@pytest.mark.skipif(not WITH_OPS, reason='CMDYSEG_WITH_OPS=0')
def test_extension_is_built():
    """``pip install -e .`` builds the kernel; a failed build must fail
    here rather than skip every 'cpp' test."""
    assert cmdyconv_cpu.EXTENSION.available, cmdyconv_cpu.EXTENSION.error
    assert 'cpp' in available_cmdyconv_backends()


@requires_ext
@pytest.mark.parametrize('c,g,mg,og', LAYOUTS)
def test_cpp_backend_float64(c, g, mg, og, monkeypatch):
    """Every layout; with offsets the compiled kernels run (checked)."""
    calls = []
    real = cmdyconv_cpu._CompiledCMDyConv.apply
    monkeypatch.setattr(cmdyconv_cpu._CompiledCMDyConv, 'apply',
                        lambda *a: calls.append(1) or real(*a))
    _check_against_reference('cpp', c, g, mg, og, torch.float64,
                             dict(rtol=1e-9, atol=1e-10))
    assert bool(calls) == bool(og)


@requires_ext
@pytest.mark.parametrize('c,g,mg,og', [LAYOUTS[2], LAYOUTS[4], LAYOUTS[8]])
def test_cpp_backend_baseline_build(c, g, mg, og):
    """The kernels compiled for the baseline instruction set (what a CPU
    without AVX2 + FMA, or a non-GCC build, runs) agree too."""
    ext = cmdyconv_cpu.EXTENSION.get()
    try:
        ext.set_isa('baseline')
        assert ext.isa() == 'baseline'
        _check_against_reference('cpp', c, g, mg, og, torch.float64,
                                 dict(rtol=1e-9, atol=1e-10))
    finally:
        ext.set_isa('auto')
    with pytest.raises(RuntimeError, match='unknown instruction set'):
        ext.set_isa('sse9')


@requires_ext
@pytest.mark.parametrize('h,w', [(1, 1), (3, 40), (17, 5)])
def test_cpp_backend_image_sizes(h, w):
    """Pixel tiles of 16: images smaller than one tile, rows spanning
    tiles, a partial last tile."""
    _check_against_reference('cpp', 8, 2, 'C', 1, torch.float64,
                             dict(rtol=1e-9, atol=1e-10), h=h, w=w)


@requires_ext
def test_cpp_backend_zero_offsets_match_mmcv_convention():
    """Zero offsets put every sample on a pixel and the border ones at
    exactly -1 (zero offset gradient there, one-sided elsewhere), as the
    'torch-autograd' backend does."""
    x, kt, kv, offset = _inputs(2, 8, 2, 5, 6, 8, 1, torch.float32, 3)
    offset = torch.zeros_like(offset)
    results = []
    for backend in ('cpp', 'torch-autograd'):
        leaves = _leaves(x, kt, kv, offset)
        out = cmdyconv(*leaves, groups=2, backend=backend)
        results.append([out] + list(_grads(out, leaves)))
    for a, e in zip(*results):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


@requires_ext
def test_cpp_backend_threads_and_repeated_backward():
    """Results do not depend on the thread count (no atomics: bitwise
    equal), and a graph kept with retain_graph gives the same gradients
    twice."""
    x, kt, kv, offset = _leaves(*_inputs(4, 32, 8, 9, 11, 32, 1,
                                         torch.float32, 6))
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = cmdyconv(x, kt, kv, offset, 8, backend='cpp')
            results.append([out] + list(_grads(out, [x, kt, kv, offset])))
    finally:
        torch.set_num_threads(threads)
    for a, e in zip(*results):
        assert torch.equal(a, e)
    out = cmdyconv(x, kt, kv, offset, 8, backend='cpp')
    first = torch.autograd.grad(out.square().sum(), [x, kv, offset],
                                retain_graph=True)
    second = torch.autograd.grad(out.square().sum(), [x, kv, offset])
    for a, e in zip(first, second):
        assert torch.equal(a, e)


@requires_ext
def test_cpp_backend_other_dtypes_fall_back_to_torch():
    x, kt, kv, offset = _inputs(1, 8, 2, 4, 5, 8, 1, torch.float32, 9)
    args = [t.to(torch.bfloat16) for t in (x, kt, kv, offset)]
    out = cmdyconv(*args, groups=2, backend='cpp')
    ref = cmdyconv(*args, groups=2, backend='torch')
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref)


@requires_ext
def test_cpp_kernels_name_bad_shapes():
    """The compiled entry points check their inputs and say what they
    got."""
    ext = cmdyconv_cpu.EXTENSION.get()
    xcl = torch.zeros(2, 6, 7, 8)  # (B, H + 2, W + 2, C): 4 x 5 pixels
    mask = torch.zeros(2, 8 * 9, 4, 5)
    off = torch.zeros(2, 18, 4, 5)
    with pytest.raises(RuntimeError, match=r'mask must be .*got \[2, 70'):
        ext.forward(xcl, mask[:, 2:].contiguous(), off, 2)
    with pytest.raises(RuntimeError, match='groups = 3 must divide C = 8'):
        ext.forward(xcl, mask, off, 3)
    with pytest.raises(RuntimeError, match=r'offset must be .*got \[2, 18, 4'):
        ext.forward(xcl, mask, torch.zeros(2, 18, 4, 4), 2)
    with pytest.raises(RuntimeError, match=r'gout must be .*got \[2, 4, 4'):
        ext.backward(torch.zeros(2, 4, 4, 5), xcl, mask, off, 2)


def test_cpp_backend_missing_extension_is_named(monkeypatch):
    monkeypatch.setattr(cmdyconv_cpu.EXTENSION, '_result',
                        (None, "ImportError('no _cmdyconv_cpu')"))
    monkeypatch.setattr(cmdyconv_module, '_LOGGED', set())
    assert 'cpp' not in available_cmdyconv_backends()
    assert get_cmdyconv_backend('auto', 'cpu')[0] == 'torch'
    with pytest.raises(RuntimeError, match='no _cmdyconv_cpu'):
        get_cmdyconv_backend('cpp')
    # one ImportError naming the backend, the module, why and what to do
    with pytest.raises(
            ImportError,
            match=r"CMDyConv backend 'cpp' needs cmdyseg's compiled CPU "
            r'kernels \(cmdyseg.models.layers._cmdyconv_cpu\), which does '
            r"not import here \(ImportError\('no _cmdyconv_cpu'\)\)\. "
            r'Reinstall cmdyseg with `pip install'):
        get_cmdyconv_backend('cpp')
    x, kt, kv, offset = _inputs(1, 8, 2, 4, 5, 8, 1, torch.float32, 9)
    with pytest.raises(RuntimeError, match='pip install'):
        cmdyconv_cpu.cpp_cmdyconv(x, kv, offset, 2)


def test_torch_backend_expanded_output_gradient():
    """``out.sum().backward()`` hands the op an expanded (stride 0)
    gradient."""
    x, kt, kv, offset = _leaves(*_inputs(2, 16, 4, 6, 6, 16, 1,
                                         torch.float64, 2))
    for off in (offset, None):
        cmdyconv(x, kt, kv, off, 4, backend='torch').sum().backward()
        ref = [t.grad.clone() for t in (x, kt, kv)]
        for t in (x, kt, kv):
            t.grad = None
        reference_cmdyconv(x, kt, kv, off, 4).sum().backward()
        for a, t in zip(ref, (x, kt, kv)):
            torch.testing.assert_close(a, t.grad)
            t.grad = None
        if off is not None:
            off.grad = None


def test_torch_backend_keeps_no_column_buffer():
    """Autograd keeps the inputs (and x as four-neighbour quads), never a
    (B, C * 9, H, W) tensor of samples."""
    b, c, g, h, w = 2, 32, 8, 12, 12
    x, kt, kv, offset = _leaves(*_inputs(b, c, g, h, w, c, 1,
                                         torch.float32, 4))
    for off in (None, offset):
        out = cmdyconv(x, kt, kv, off, g, backend='torch')
        node = out.grad_fn
        while node is not None and 'CMDyConv' not in type(node).__name__:
            node = node.next_functions[0][0]
        assert node is not None
        saved = [t for t in node.saved_tensors if t.numel() != kv.numel()]
        padded = (h + 2) * (w + 2) * b * c
        # x padded (no offsets) or its quads (offsets) + the sampling plan
        budget = padded if off is None else 4 * padded + 4 * 9 * b * h * w
        assert sum(t.numel() for t in saved) <= budget
        assert all(t.numel() < 9 * b * c * h * w for t in saved)


@pytest.mark.parametrize('backend,mg', [('torch', 2), ('cpp', 4)])
def test_fast_backends_gradcheck(backend, mg):
    if backend not in available_cmdyconv_backends():
        pytest.skip(f'backend {backend!r} not available here')
    x, kt, kv, offset = _leaves(*_inputs(1, 4, 2, 4, 5, mg, 2,
                                         torch.float64, 8))
    assert torch.autograd.gradcheck(
        lambda *a: cmdyconv(*a, groups=2, backend=backend),
        (x, kt, kv, offset))
    assert torch.autograd.gradcheck(
        lambda *a: cmdyconv(*a, None, groups=2, backend=backend),
        (x, kt, kv))


# --------------------------------------------------------------------------
# Triton (interpreter mode on CPU: keep these few and small)
# --------------------------------------------------------------------------
@requires_triton
@pytest.mark.parametrize('c,g,mg,og,channels_last', [
    (16, 4, 'C', 1, True),
    (16, 4, 'C', 1, False),
    (16, 4, 'G', 1, True),
    (16, 4, 'G', 0, True),
    (16, 4, 2, 'G', True),
    (12, 4, 'C', 'C', True),
    (12, 4, 'C', 1, True),  # N = 3: the tiled kernels
])
def test_triton_float32_agrees_with_reference(c, g, mg, og, channels_last,
                                              monkeypatch):
    from cmdyseg.models.layers import cmdyconv_triton as tri
    monkeypatch.setattr(tri, 'CHANNELS_LAST', channels_last)
    launched = []
    real = tri._cl_forward
    monkeypatch.setattr(tri, '_cl_forward',
                        lambda *a: launched.append(1) or real(*a))
    _check_against_reference(
        'triton', c, g, mg, og, torch.float32, dict(rtol=1e-5, atol=1e-5),
        h=4, w=5, device=TRITON_DEVICE)
    # one shared offset field and power-of-two groups: channels-last
    expect_cl = channels_last and og == 1 and (c // g) in (1, 2, 4, 8)
    assert bool(launched) == expect_cl


@requires_triton
def test_triton_channels_last_several_channel_blocks(monkeypatch):
    """C larger than CL_BLOCK_C: programs split the channels and their
    offset-gradient shares are summed."""
    from cmdyseg.models.layers import cmdyconv_triton as tri
    monkeypatch.setattr(tri, 'CL_BLOCK_C', 8)
    monkeypatch.setattr(tri, 'CL_BLOCK_P', 8)
    assert tri._cl_block_c(32, 4, 1) == 8
    _check_against_reference(
        'triton', 32, 8, 'C', 1, torch.float32, dict(rtol=1e-5, atol=1e-5),
        h=4, w=5, device=TRITON_DEVICE)


@requires_triton
def test_triton_float64_and_zero_offsets():
    """float64 to 1e-9, and zero offsets (every sample on a pixel, the
    border ones at exactly -1) matching the mmcv convention of the
    'torch-autograd' backend."""
    _check_against_reference(
        'triton', 8, 2, 'C', 1, torch.float64, dict(rtol=1e-9, atol=1e-10),
        h=4, w=5, device=TRITON_DEVICE)
    x, kt, kv, offset = _inputs(1, 8, 2, 4, 5, 8, 1, torch.float32, 3)
    offset = torch.zeros_like(offset)
    results = []
    for backend, dev in (('triton', TRITON_DEVICE), ('torch-autograd',
                                                     'cpu')):
        leaves = _leaves(x, kt, kv, offset, device=dev)
        out = cmdyconv(*leaves, groups=2, backend=backend)
        results.append([out.cpu()] + [t.cpu() for t in _grads(out, leaves)])
    for a, e in zip(*results):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------
def test_auto_dispatch_by_device():
    cpu_choice = ('cpp' if cmdyconv_cpu.EXTENSION.available else 'torch')
    assert get_cmdyconv_backend('auto', 'cpu')[0] == cpu_choice
    cuda_choice = get_cmdyconv_backend('auto', 'cuda')[0]
    expected = next(n for n in AUTO_PRIORITY['cuda']
                    if n in available_cmdyconv_backends())
    assert cuda_choice == expected
    if HAS_TRITON:
        assert cuda_choice == 'triton'
    # an explicit name (the heads' ``backend`` config argument) wins
    assert get_cmdyconv_backend('torch-autograd', 'cuda')[0] == \
        'torch-autograd'


def test_dispatch_logs_once_per_device_and_choice(monkeypatch):
    logged = []
    monkeypatch.setattr(cmdyconv_module, 'print_log',
                        lambda msg, logger=None: logged.append(msg))
    monkeypatch.setattr(cmdyconv_module, '_LOGGED', set())
    for _ in range(3):
        get_cmdyconv_backend('auto', 'cpu')
        get_cmdyconv_backend('auto', torch.device('cpu'))
    cpu_choice = ('cpp' if cmdyconv_cpu.EXTENSION.available else 'torch')
    assert len(logged) == 1 and f"'{cpu_choice}'" in logged[0]
    get_cmdyconv_backend('auto', 'cuda')
    assert len(logged) == 2 and 'cuda' in logged[1]


def test_register_backend_per_device(monkeypatch):
    monkeypatch.setattr(cmdyconv_module, '_BACKENDS',
                        dict(cmdyconv_module._BACKENDS))
    monkeypatch.setattr(cmdyconv_module, 'AUTO_PRIORITY',
                        {k: list(v)
                         for k, v in AUTO_PRIORITY.items()})
    calls = []

    @cmdyconv_module.register_cmdyconv_backend(
        'dummy', auto_priority=0, device_types=('cpu', ))
    def _dummy(x, mask, offset, groups):
        calls.append(groups)
        return x.new_zeros(x.shape[0], groups, *x.shape[2:])

    assert cmdyconv_module.AUTO_PRIORITY['cpu'][0] == 'dummy'
    assert 'dummy' not in cmdyconv_module.AUTO_PRIORITY['cuda']
    x, kt, kv, _ = _inputs(1, 8, 2, 4, 4, 8, 0, torch.float32)
    monkeypatch.setattr(cmdyconv_module, '_LOGGED', set())
    out = cmdyconv_module.cmdyconv(x, kt, kv, None, 2)
    assert calls == [2] and out.abs().sum() == 0
