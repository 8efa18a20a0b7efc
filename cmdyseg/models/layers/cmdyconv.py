# Copyright (c) cmdyseg contributors. All rights reserved.
r"""The (deformable) context modulated dynamic convolution operation.

This module computes, for every sample ``b``, group ``j`` and pixel ``p``,
the inner sum of eq. 11 (CMDyConv) and eq. 12 (DCMDyConv) of the paper,
i.e. everything except the pointwise convolution ``P``:

.. math::

    R_j(p) = \sum_{i<N} \sum_{l \in \Omega} k^T_{i,j} \, k^V_{i,j,l}(p)
             \, F_{i,j}(p + l + \Delta l(p))

with ``Omega`` the 3x3 window (dilation 1, zero padding 1), ``Delta l = 0``
for CMDyConv, and bilinear sampling at fractional positions (DCMDyConv).

Channel ordering conventions (the same as a grouped ``nn.Conv2d`` and as
``mmcv.ops.modulated_deform_conv2d``):

* ``x`` has ``C = N * G`` channels; channel ``c`` is channel ``i = c % N``
  of group ``j = c // N`` (groups are contiguous blocks of ``N`` channels).
* ``kt`` (B, C) holds :math:`k^T_{i,j}` at column ``c = j * N + i``.
* ``kv`` (B, M * 9, H, W) holds :math:`k^V`. ``M`` mask groups split the
  ``C`` channels into ``M`` contiguous blocks of ``C // M`` channels that
  share one modulation map; channel ``m * 9 + l`` is mask group ``m`` at
  window position ``l = 3 * ky + kx`` (row major, ``ky, kx`` in
  ``{0, 1, 2}`` for displacements ``ky - 1, kx - 1``). ``M = C`` is the
  faithful per-channel :math:`k^V` of eq. 11; ``M = G`` is the cheaper
  per-group option. Any ``M`` dividing ``C`` is accepted.
* ``offset`` (B, O * 18, H, W) or None. ``O`` offset groups split the
  channels into ``O`` contiguous blocks sharing one offset field; channel
  ``o * 18 + 2 * l`` is the vertical offset ``dy`` and ``o * 18 + 2 * l + 1``
  the horizontal offset ``dx`` of window position ``l`` -- exactly the
  layout of mmcv's ``modulated_deform_conv2d`` offsets. ``O = 1`` shares
  one field among all channels, ``O = G`` gives one per group.
* Sampling follows mmcv: position ``(h - 1 + ky + dy, w - 1 + kx + dx)``;
  bilinear interpolation of the four integer neighbours, each neighbour
  outside ``[0, H) x [0, W)`` contributing zero.

Implementation (SPEC item 9): :math:`k^T` is one scalar per channel, so it
is applied as a channel scaling of ``x``; what remains is a modulated
deformable grouped 3x3 convolution with an all-ones weight, mask ``kv`` and
offsets ``offset``. When every group of ``N`` channels shares its mask and
its offsets (``M`` and ``O`` both divide ``G``), sampling is linear and
the ``N`` scaled channels of a group are summed *before* the convolution,
which is the same sum computed ``N`` times cheaper.

Backends (see :func:`get_cmdyconv_backend`) compute that grouped
convolution. A backend is a function ``fn(x, mask, offset, groups)`` with
``x`` (B, C, H, W) already scaled by ``kt``, ``mask`` (B, M * 9, H, W),
``offset`` None or (B, O * 18, H, W) and it returns (B, groups, H, W); a
*fused* backend takes ``(x, kt, kv, offset, groups)`` and does the scaling
itself. Registered here:

* ``'cpp'`` (:mod:`.cmdyconv_cpu`): compiled CPU kernels for the
  deformable operation (built by ``pip install``; the ``'torch'`` path
  without offsets, where that is faster); the CPU default when built.
* ``'torch'`` (:mod:`.cmdyconv_torch`): pure PyTorch with a hand-written
  backward that never builds the column buffer; the CPU default when the
  extension is not built.
* ``'torch-autograd'``: the plain autograd ``F.unfold`` / gather
  formulation, kept as a cross-check (twice differentiable).
* ``'mmcv'``: mmcv's compiled ``modulated_deform_conv2d`` (on CPU slower
  than ``'torch'`` in every layout measured by
  ``tools/analysis/benchmark_op.py``, numbers in configs/cmdyconv/README.md;
  on CUDA it is the fallback).
* ``'triton'`` (:mod:`.cmdyconv_triton`, fused): one Triton kernel for the
  forward pass and one for the backward pass; the CUDA default when
  ``triton`` imports.
"""
import math
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor

from cmdyseg.utils.optional import OptionalImport
from .cmdyconv_cpu import EXTENSION, cpp_cmdyconv
from .cmdyconv_torch import KERNEL_POINTS, KERNEL_SIZE, torch_cmdyconv


class _Backend(NamedTuple):
    fn: Callable
    is_available: Callable[[], bool]
    # fused backends take the raw ``(x, kt, kv, offset, groups)``
    fused: bool
    # the optional dependency it needs, named when it is missing
    requires: Optional[OptionalImport]


# name -> backend. Extend with :func:`register_cmdyconv_backend`.
_BACKENDS: Dict[str, _Backend] = {}
# The order in which ``'auto'`` tries the backends, per device type (other
# device types use the 'cpu' list).
AUTO_PRIORITY: Dict[str, List[str]] = {
    'cpu': ['cpp', 'torch'],
    'cuda': ['triton', 'mmcv', 'torch'],
}
_LOGGED = set()


def register_cmdyconv_backend(name: str,
                              is_available: Optional[Callable[[],
                                                              bool]] = None,
                              auto_priority: Optional[int] = None,
                              device_types: Tuple[str, ...] = ('cpu', 'cuda'),
                              fused: bool = False,
                              requires: Optional[OptionalImport] = None):
    """Decorator registering a backend function.

    A plain backend is ``fn(x, mask, offset, groups) -> (B, G, H, W)`` with
    ``x`` already scaled by ``kt`` (and its channels of a group summed when
    they share mask and offsets, see :func:`cmdyconv`); a ``fused`` one is
    ``fn(x, kt, kv, offset, groups)`` and does everything itself.

    Args:
        name (str): the backend name (what ``backend=`` selects).
        is_available (callable, optional): returns whether the backend can
            run here. Defaults to ``requires.available``, or always
            available without ``requires``.
        auto_priority (int, optional): position at which to insert ``name``
            in the :data:`AUTO_PRIORITY` lists of ``device_types``. None
            appends a new name to those lists and leaves a known one where
            it is.
        device_types (tuple[str]): the device types whose ``'auto'`` may
            pick the backend.
        fused (bool): the backend takes ``kt`` itself (see above).
        requires (OptionalImport, optional): the optional dependency
            (compiled extension, package) the backend needs; asking for the
            backend while it is missing raises its
            :class:`~cmdyseg.utils.optional.MissingDependencyError`.
    """
    if is_available is None:
        is_available = ((lambda: requires.available)
                        if requires is not None else (lambda: True))

    def _register(fn):
        _BACKENDS[name] = _Backend(fn, is_available, fused, requires)
        for dev in device_types:
            order = AUTO_PRIORITY.setdefault(dev, [])
            if auto_priority is not None:
                if name in order:
                    order.remove(name)
                order.insert(auto_priority, name)
            elif name not in order:
                order.append(name)
        return fn

    return _register


def available_cmdyconv_backends() -> List[str]:
    """Names of the registered backends that can run here."""
    return [name for name, be in _BACKENDS.items() if be.is_available()]


def get_cmdyconv_backend(
        name: str = 'auto',
        device: Union[None, str, torch.device] = None
) -> Tuple[str, Callable]:
    """Resolve a backend name to ``(resolved_name, function)``.

    The one dispatch point for the operation. ``'auto'`` picks the first
    available backend of ``AUTO_PRIORITY[device type]``: on CPU the compiled
    ``'cpp'`` kernels when the extension is built, else the pure-PyTorch
    ``'torch'`` backend (both faster than mmcv's CPU kernel in every
    layout, see ``tools/analysis/benchmark_op.py``); on CUDA the fused Triton
    kernel when ``triton`` imports, else mmcv's compiled op, else
    ``'torch'``. Each (device type, requested name, choice) is logged once
    through mmengine's current logger. A config overrides the choice with
    the heads' ``backend`` argument.

    Args:
        name (str): ``'auto'``, or a registered backend name
            (``'cpp'``, ``'torch'``, ``'torch-autograd'``, ``'mmcv'``,
            ``'triton'``).
        device (str | torch.device, optional): where the operands live;
            None means CPU.

    Raises:
        KeyError: for an unknown name.
        RuntimeError: when the named backend cannot run here; a
            :class:`~cmdyseg.utils.optional.MissingDependencyError` (also
            an ImportError) naming the import error and how to install
            the dependency when that is the reason.
    """
    dev_type = torch.device(device).type if device is not None else 'cpu'
    if name == 'auto':
        order = AUTO_PRIORITY.get(dev_type, AUTO_PRIORITY['cpu'])
        for cand in order:
            if cand in _BACKENDS and _BACKENDS[cand].is_available():
                resolved = cand
                break
        else:
            raise RuntimeError(
                f'no CMDyConv backend is available for device {dev_type!r}; '
                f'registered: {sorted(_BACKENDS)}')
    elif name not in _BACKENDS:
        raise KeyError(f'unknown CMDyConv backend {name!r}; registered: '
                       f'{sorted(_BACKENDS)} (or "auto")')
    else:
        resolved = name
        backend = _BACKENDS[name]
        if not backend.is_available():
            if backend.requires is not None \
                    and not backend.requires.available:
                raise backend.requires.missing_error(
                    f'CMDyConv backend {name!r}')
            raise RuntimeError(
                f'CMDyConv backend {name!r} is not available here')
    key = (dev_type, name, resolved)
    if key not in _LOGGED:
        _LOGGED.add(key)
        print_log(
            f'CMDyConv backend on {dev_type}: {resolved!r} (requested '
            f'{name!r}; available: {available_cmdyconv_backends()})',
            logger='current')
    return resolved, _BACKENDS[resolved].fn


# --------------------------------------------------------------------------
# mmcv backend
# --------------------------------------------------------------------------
MMCV_OPS = OptionalImport(
    'mmcv.ops',
    'modulated_deform_conv2d',
    what="mmcv's compiled ops (mmcv.ops.modulated_deform_conv2d)",
    install="mmcv's compiled ops are not installed: mmcv-lite (what "
    '`tools/setup_env.sh --lite` installs), or an mmcv built without '
    'MMCV_WITH_OPS=1, has none. To get them, run the default setup, '
    '`bash tools/setup_env.sh` (mmcv 2.1.0 built with its ops, or the '
    'wheel CMDYSEG_MMCV_WHEEL / CMDYSEG_MMCV_FIND_LINKS points to); or use '
    'backend="auto" (cmdyseg\'s own kernels: \'cpp\' on CPU, \'triton\' on '
    'CUDA, same results) or "torch"')


def _expand_groups(t: Tensor, groups: int, target: int) -> Tensor:
    """Repeat each of the ``groups`` contiguous channel blocks of ``t``
    (B, groups * K, H, W) so that it has ``target`` blocks (each block of
    channels of the coarse grouping covers ``target // groups`` of the fine
    one)."""
    if groups == target:
        return t
    b, ch, h, w = t.shape
    k = ch // groups
    t = t.view(b, groups, 1, k, h, w).expand(b, groups, target // groups, k,
                                             h, w)
    return t.reshape(b, target * k, h, w)


@register_cmdyconv_backend('mmcv', device_types=('cuda', ), requires=MMCV_OPS)
def _mmcv_backend(x: Tensor, mask: Tensor, offset: Optional[Tensor],
                  groups: int) -> Tensor:
    """mmcv's compiled DCNv2 with an all-ones grouped weight.

    mmcv uses one deform-group count for mask and offsets, so both are
    expanded to ``lcm(M, O)`` groups (mask and offset blocks nest because
    all counts divide ``C``).
    """
    modulated_deform_conv2d = MMCV_OPS.require("CMDyConv backend 'mmcv'")
    b, c, h, w = x.shape
    mg = mask.shape[1] // KERNEL_POINTS
    og = 1 if offset is None else offset.shape[1] // (2 * KERNEL_POINTS)
    dg = mg * og // math.gcd(mg, og)
    if offset is None:
        offset = x.new_zeros(b, 2 * KERNEL_POINTS * dg, h, w)
    else:
        offset = _expand_groups(offset, og, dg).to(x.dtype)
    mask = _expand_groups(mask, mg, dg).to(x.dtype)
    weight = x.new_ones(groups, c // groups, KERNEL_SIZE, KERNEL_SIZE)
    return modulated_deform_conv2d(x.contiguous(), offset.contiguous(),
                                   mask.contiguous(), weight, None, 1, 1, 1,
                                   groups, dg)


# --------------------------------------------------------------------------
# pure PyTorch backends
# --------------------------------------------------------------------------
# the fast one (cmdyconv_torch.py): no column buffer, hand-written backward
register_cmdyconv_backend('torch')(torch_cmdyconv)


# --------------------------------------------------------------------------
# compiled CPU kernels (cmdyconv_cpu.py, csrc/cmdyconv_cpu.cpp)
# --------------------------------------------------------------------------
@register_cmdyconv_backend(
    'cpp', auto_priority=0, device_types=('cpu', ), requires=EXTENSION)
def _cpp_backend(x: Tensor, mask: Tensor, offset: Optional[Tensor],
                 groups: int) -> Tensor:
    """The compiled kernels with offsets, the ``'torch'`` shifted path
    without them (faster there), see :mod:`.cmdyconv_cpu`."""
    return cpp_cmdyconv(x, mask, offset, groups)


@register_cmdyconv_backend('torch-autograd', device_types=())
def _autograd_backend(x: Tensor, mask: Tensor, offset: Optional[Tensor],
                      groups: int) -> Tensor:
    """Plain autograd formulation: ``F.unfold`` without offsets, one batched
    gather of the four bilinear neighbours of all 9 window positions with
    offsets. Slower than ``'torch'`` and it materialises the column buffer,
    but differentiable twice; kept as a cross-check.

    Memory: about ``B * C * 9 * H * W`` elements without offsets and four
    times that with offsets (kept for the backward pass).
    """
    b, c, h, w = x.shape
    hw = h * w
    mg = mask.shape[1] // KERNEL_POINTS
    if offset is None:
        # (B, C * 9, H * W), channel c * 9 + l
        cols = F.unfold(x, KERNEL_SIZE, padding=KERNEL_SIZE // 2)
    else:
        cols = _deform_columns(x, offset)  # (B, C, 9, H * W)
    cols = cols.view(b, mg, c // mg, KERNEL_POINTS, hw)
    prod = cols * mask.view(b, mg, 1, KERNEL_POINTS, hw)
    # (B, M, C // M, 9, HW) is laid out as (B, C, 9, HW) = (B, G, N * 9, HW)
    out = prod.reshape(b, groups, -1, hw).sum(2)
    return out.view(b, groups, h, w)


def _deform_columns(x: Tensor, offset: Tensor) -> Tensor:
    """Bilinear samples of ``x`` (B, C, H, W) at the 9 offset window
    positions of every pixel, zero outside the image.

    Returns (B, C, 9, H * W).
    """
    b, c, h, w = x.shape
    hw = h * w
    og = offset.shape[1] // (2 * KERNEL_POINTS)
    off = offset.to(x.dtype).view(b, og, KERNEL_POINTS, 2, h, w)
    ky, kx = torch.meshgrid(
        torch.arange(KERNEL_SIZE, device=x.device),
        torch.arange(KERNEL_SIZE, device=x.device),
        indexing='ij')
    ky = (ky.reshape(KERNEL_POINTS, 1, 1) - KERNEL_SIZE // 2).to(x.dtype)
    kx = (kx.reshape(KERNEL_POINTS, 1, 1) - KERNEL_SIZE // 2).to(x.dtype)
    base_y = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    base_x = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
    # integer part is exact, so zero offsets sample exactly at the pixels
    py = (base_y + ky) + off[:, :, :, 0]  # (B, O, 9, H, W)
    px = (base_x + kx) + off[:, :, :, 1]
    y0 = torch.floor(py)
    x0 = torch.floor(px)
    ly = py - y0
    lx = px - x0
    y0 = y0.long()
    x0 = x0.long()
    # mmcv samples only points strictly inside (-1, H) x (-1, W); this only
    # matters for the offset gradient at exactly -1 (zero there, as in mmcv)
    in_range = ((py > -1) & (py < h) & (px > -1) & (px < w)).to(x.dtype)
    idx, wts = [], []
    for dy, wy in ((0, 1 - ly), (1, ly)):
        for dx, wx in ((0, 1 - lx), (1, lx)):
            yy = y0 + dy
            xx = x0 + dx
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            idx.append(yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1))
            wts.append(wy * wx * (inside.to(x.dtype) * in_range))
    # (B, O, 4, 9 * HW)
    idx = torch.stack(idx, 2).view(b, og, 1, 4 * KERNEL_POINTS * hw)
    wts = torch.stack(wts, 2).view(b, og, 1, 4, KERNEL_POINTS, hw)
    src = x.reshape(b, og, c // og, hw)
    vals = torch.gather(src, 3, idx.expand(b, og, c // og, idx.shape[-1]))
    vals = vals.view(b, og, c // og, 4, KERNEL_POINTS, hw)
    return (vals * wts).sum(3).view(b, c, KERNEL_POINTS, hw)


# --------------------------------------------------------------------------
# Triton backend (fused; imported on first use)
# --------------------------------------------------------------------------
TRITON = OptionalImport(
    'triton',
    what='the `triton` package',
    install='Install it (`pip install triton`); it runs on CUDA tensors, '
    'or on CPU tensors with TRITON_INTERPRET=1 (the slow interpreter, for '
    'tests)')


@register_cmdyconv_backend(
    'triton', device_types=('cuda', ), fused=True, requires=TRITON)
def _triton_backend(x: Tensor, kt: Tensor, kv: Tensor,
                    offset: Optional[Tensor], groups: int) -> Tensor:
    """One fused Triton kernel per pass, see :mod:`.cmdyconv_triton`."""
    from .cmdyconv_triton import triton_cmdyconv
    return triton_cmdyconv(x, kt, kv, offset, groups)


# --------------------------------------------------------------------------
# what 'auto' picks and why (collect_env, tools/setup_env.sh's summary)
# --------------------------------------------------------------------------
def _backend_state(name: str) -> Tuple[bool, str]:
    """``(available, why)`` of a registered backend, in words."""
    backend = _BACKENDS[name]
    ok = backend.is_available()
    if name == 'cpp':
        if ok:
            return True, f'compiled kernel loads, {EXTENSION.get().isa()}'
        return False, f"cmdyseg's CPU kernel not built: {EXTENSION.error}"
    if name == 'triton':
        if ok:
            version = getattr(TRITON.get(), '__version__', '?')
            return True, f'triton {version} imports'
        return False, f'triton does not import: {TRITON.error}'
    if name == 'mmcv':
        if ok:
            return True, "mmcv's compiled ops load"
        return False, (f"mmcv's compiled ops not installed: "
                       f'{MMCV_OPS.error}')
    if name == 'torch':
        return True, 'pure PyTorch'
    if ok:
        return True, 'available'
    req = backend.requires
    return False, (f'{req.what} does not import: {req.error}'
                   if req is not None and not req.available else
                   'not available')


def explain_cmdyconv_backend(
        device_type: str = 'cpu') -> Tuple[Optional[str], str]:
    """The backend ``'auto'`` picks for ``device_type`` and why, e.g.
    ``('cpp', 'compiled kernel loads, avx2')`` or ``('torch', "cmdyseg's
    CPU kernel not built: ImportError(...)")``: the reasons the backends
    before it were passed over, then its own (the generic one of
    ``'torch'`` only when nothing was passed over). ``(None, reasons)``
    when none can run. Imports nothing beyond what the backends of
    ``AUTO_PRIORITY[device_type]`` up to the chosen one need.
    """
    order = AUTO_PRIORITY.get(device_type, AUTO_PRIORITY['cpu'])
    passed = []
    for cand in order:
        if cand not in _BACKENDS:
            continue
        ok, why = _backend_state(cand)
        if ok:
            reasons = passed if (passed and cand == 'torch') else passed + [
                why
            ]
            return cand, '; '.join(reasons)
        passed.append(why)
    return None, '; '.join(passed) or 'no backend registered'


# --------------------------------------------------------------------------
# the operation
# --------------------------------------------------------------------------
def cmdyconv(x: Tensor,
             kt: Tensor,
             kv: Tensor,
             offset: Optional[Tensor] = None,
             groups: int = 1,
             backend: str = 'auto') -> Tensor:
    r"""(Deformable) context modulated dynamic convolution, eq. 11 / 12
    without the pointwise convolution ``P``.

    Args:
        x (Tensor): visual features :math:`F^M_V`, (B, C, H, W), ``C = N * G``.
        kt (Tensor): text kernel :math:`k^T`, (B, C); column ``j * N + i``
            is channel ``i`` of group ``j``.
        kv (Tensor): visual modulation :math:`k^V`, (B, M * 9, H, W) with
            ``M`` mask groups dividing ``C``: ``M = C`` per channel
            (eq. 11), ``M = G`` per group.
        offset (Tensor, optional): :math:`\Delta l`, (B, O * 18, H, W) with
            ``O`` offset groups dividing ``C`` (1 or G in the heads),
            ``(dy, dx)`` per window position as mmcv lays them out. None
            for CMDyConv (no offsets).
        groups (int): ``G``.
        backend (str): ``'auto'`` (chosen by ``x.device``, see
            :func:`get_cmdyconv_backend`) or a name registered with
            :func:`register_cmdyconv_backend` (``'cpp'``, ``'torch'``,
            ``'torch-autograd'``, ``'mmcv'``, ``'triton'``).

    Returns:
        Tensor: (B, G, H, W), :math:`\sum_i \sum_l k^T k^V F(p + l + \Delta
        l)` for each group.
    """
    _check_inputs(x, kt, kv, offset, groups)
    name, fn = get_cmdyconv_backend(backend, x.device)
    if _BACKENDS[name].fused:
        return fn(x, kt, kv, offset, groups)
    b, c, h, w = x.shape
    xs = x * kt.to(x.dtype).view(b, c, 1, 1)
    mg = kv.shape[1] // KERNEL_POINTS
    og = 1 if offset is None else offset.shape[1] // (2 * KERNEL_POINTS)
    if c != groups and groups % mg == 0 and groups % og == 0:
        # all N channels of a group share mask and offsets: sum them first
        xs = xs.view(b, groups, c // groups, h, w).sum(2)
    return fn(xs, kv.to(x.dtype), offset, groups)


def _check_inputs(x, kt, kv, offset, groups):
    if x.dim() != 4:
        raise ValueError(f'cmdyconv: x must be (B, C, H, W), got shape '
                         f'{tuple(x.shape)}')
    b, c, h, w = x.shape
    if not isinstance(groups, int) or groups < 1 or c % groups:
        raise ValueError(f'cmdyconv: groups={groups!r} must be a positive '
                         f'int dividing the {c} channels of x')
    if tuple(kt.shape) != (b, c):
        raise ValueError(f'cmdyconv: kt must be (B, C) = {(b, c)}, got '
                         f'{tuple(kt.shape)}')
    if (kv.dim() != 4 or kv.shape[0] != b or tuple(kv.shape[2:]) != (h, w)
            or kv.shape[1] % KERNEL_POINTS
            or c % (kv.shape[1] // KERNEL_POINTS or 1)
            or kv.shape[1] == 0):
        raise ValueError(
            f'cmdyconv: kv must be (B, M * 9, H, W) with M dividing '
            f'C={c}, B={b}, H, W={h}, {w}; got {tuple(kv.shape)}')
    if offset is not None:
        k2 = 2 * KERNEL_POINTS
        if (offset.dim() != 4 or offset.shape[0] != b
                or tuple(offset.shape[2:]) != (h, w) or offset.shape[1] == 0
                or offset.shape[1] % k2
                or c % (offset.shape[1] // k2 or 1)):
            raise ValueError(
                f'cmdyconv: offset must be (B, O * 18, H, W) with O '
                f'dividing C={c}, B={b}, H, W={h}, {w}; got '
                f'{tuple(offset.shape)}')
