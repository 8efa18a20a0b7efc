# Copyright (c) cmdyseg contributors. All rights reserved.
r"""Fused Triton kernels of the CMDyConv operation (the ``'triton'``
backend, the CUDA default of ``'auto'`` when ``triton`` imports).

One kernel computes the whole of eq. 11 / 12 without ``P``:

.. math::

    R_j(p) = \sum_{i<N} \sum_{l \in \Omega} k^T_{i,j} \, k^V_{i,j,l}(p)
             \, F_{i,j}(p + l + \Delta l(p))

-- channel scaling by :math:`k^T`, bilinear sampling at the offset window
positions (mmcv's conventions, see :mod:`.cmdyconv`), modulation by
:math:`k^V` and the reduction over the ``N`` channels and 9 positions of
group ``j`` -- in one pass. Two kernel families, picked per call:

* *channels-last* (``_cl_*``), when one offset field is shared by all
  channels (the paper's layout) and the group sizes are powers of two:
  ``x`` is copied channels-last and a program owns (sample, CL_BLOCK_P
  pixels, CL_BLOCK_C channels), so the bilinear plan is computed once per
  pixel for all its channels, every gather reads contiguous channels and
  the offset gradient is summed in registers;
* *tiled* (the others): a program owns one (sample ``b``, group ``j``,
  block of pixels) tile of (N, BLOCK_P) values and writes (BLOCK_P,)
  results.

Nothing of size (B, C * 9, H, W) is ever written. Launch shapes were
chosen on an H100 with ``tools/analysis/benchmark_op_cuda.py --tune``.

The backward kernels recompute the samples tile by tile and produce every
gradient in the same pass (tiled family; the channels-last one likewise,
with the offset gradient stored per channel block and summed by torch):

* ``kV``: :math:`k^T g \, F(\cdot)` per channel (stored; summed over the
  tile's channels first when they share a mask group),
* ``kT``: :math:`\sum_{l,p} k^V g \, F(\cdot)` (one atomic add per channel
  and tile),
* ``offset``: :math:`k^T k^V g \, \partial F / \partial \Delta` from the
  derivatives of the bilinear weights (summed over the tile's channels
  when they share the offset field),
* ``x``: without offsets gathered (the transposed window is read from
  shifted positions, no atomics); with offsets scattered with atomic adds
  to the four neighbours.

``float16`` / ``bfloat16`` inputs are computed in ``float32``, ``float64``
in ``float64``. With ``TRITON_INTERPRET=1`` (set before this module is
imported) the kernels run on CPU tensors in Triton's interpreter -- slowly,
for the tests.
"""
import os

import torch
import triton
import triton.language as tl
from torch import Tensor

INTERPRET = os.environ.get('TRITON_INTERPRET', '0') == '1'
# Launch shape: a program owns (N_PAD, BLOCK_P) values, BLOCK_P =
# min(MAX_BLOCK_P, TILE_ELEMS // N_PAD), run by NUM_WARPS warps.
TILE_ELEMS = 1024
MAX_BLOCK_P = 256
NUM_WARPS = 4
# One offset field shared by all channels (the paper's layout): kernels on a
# channels-last copy of ``x`` whose programs own (CL_BLOCK_P pixels,
# CL_BLOCK_C channels), so that gathers and scattered gradient adds touch
# contiguous channels.
CHANNELS_LAST = True
CL_BLOCK_P = 16
CL_BLOCK_C = 64
CL_NUM_WARPS = 4


@triton.jit
def _plan(py, px, H, W, inside):
    """Integer top-left neighbour, fractional parts and validity (mmcv:
    samples outside (-1, H) x (-1, W) are zero)."""
    y0f = tl.floor(py)
    x0f = tl.floor(px)
    ly = py - y0f
    lx = px - x0f
    valid = (py > -1) & (py < H) & (px > -1) & (px < W) & inside
    return y0f.to(tl.int32), x0f.to(tl.int32), ly, lx, valid


@triton.jit
def _red(ptr, val, mask):
    """Atomic add with relaxed ordering (only the final sums matter)."""
    tl.atomic_add(ptr, val, mask=mask, sem='relaxed')


@triton.jit
def _ok(y, x, H, W, valid):
    return valid & (y >= 0) & (y < H) & (x >= 0) & (x < W)


@triton.jit
def _load_mask(kv_ptr, b, c, j, k, p, pmask, tmask, M, N, CM, HW,
               MASK_SHARED: tl.constexpr, ACC: tl.constexpr):
    """kV of window position ``k``: (1, BLOCK_P) when the tile's channels
    share one mask group, else (N_PAD, BLOCK_P)."""
    if MASK_SHARED:
        row = (b * M + (j * N) // CM) * 9 + k
        m = tl.load(kv_ptr + row.to(tl.int64) * HW + p, mask=pmask, other=0.)
        m = m.to(ACC)[None, :]
    else:
        row = (b * M + c // CM) * 9 + k
        m = tl.load(kv_ptr + row.to(tl.int64)[:, None] * HW + p[None, :],
                    mask=tmask, other=0.).to(ACC)
    return m


@triton.jit
def _offset_rows(b, c, j, k, OG, N, CG, OFF_SHARED: tl.constexpr):
    """Row of ``dy`` of window position ``k`` in the (B * OG * 18) offset
    planes: scalar when the tile shares one offset field, else
    (N_PAD, 1)."""
    if OFF_SHARED:
        row = (b * OG + (j * N) // CG) * 18 + 2 * k
    else:
        row = ((b * OG + c // CG) * 18 + 2 * k)[:, None]
    return row


@triton.jit
def _offset_plan(off_ptr, row, p, hh, ww, ky, kx, tmask, H, W,
                 ACC: tl.constexpr):
    """Bilinear plan (see :func:`_plan`) of the sample points
    ``p + (ky, kx) + (dy, dx)`` of window position ``(ky, kx)``, the offsets
    read from rows ``row`` (dy) and ``row + 1`` (dx) of the offset planes."""
    HW = H * W
    optr = off_ptr + row.to(tl.int64) * HW + p[None, :]
    dy = tl.load(optr, mask=tmask, other=0.).to(ACC)
    dx = tl.load(optr + HW, mask=tmask, other=0.).to(ACC)
    py = (hh + ky).to(ACC)[None, :] + dy
    px = (ww + kx).to(ACC)[None, :] + dx
    return _plan(py, px, H, W, tmask)


@triton.jit
def _gather4(p00, dx, dy, ok00, ok01, ok10, ok11, ACC: tl.constexpr):
    """The four bilinear neighbours: ``p00`` points at (y0, x0), ``dx`` /
    ``dy`` are the pointer steps to (y0, x0 + 1) / (y0 + 1, x0)."""
    v00 = tl.load(p00, mask=ok00, other=0.).to(ACC)
    v01 = tl.load(p00 + dx, mask=ok01, other=0.).to(ACC)
    v10 = tl.load(p00 + dy, mask=ok10, other=0.).to(ACC)
    v11 = tl.load(p00 + dy + dx, mask=ok11, other=0.).to(ACC)
    return v00, v01, v10, v11


@triton.jit
def _bilinear(ly, lx, v00, v01, v10, v11):
    return (1 - ly) * ((1 - lx) * v00 + lx * v01) + ly * (
        (1 - lx) * v10 + lx * v11)


@triton.jit
def _scatter4(p00, dx, dy, a, ly, lx, ok00, ok01, ok10, ok11):
    """Add ``a`` times each neighbour's bilinear weight to its gradient
    (layout as in :func:`_gather4`)."""
    hy = 1 - ly
    hx = 1 - lx
    _red(p00, a * hy * hx, mask=ok00)
    _red(p00 + dx, a * hy * lx, mask=ok01)
    _red(p00 + dy, a * ly * hx, mask=ok10)
    _red(p00 + dy + dx, a * ly * lx, mask=ok11)


@triton.jit
def _offset_grads(a, vf, ly, lx, v00, v01, v10, v11):
    """``a`` times the derivatives of the sample by (dy, dx); zero for
    samples outside the image (``vf`` = 0)."""
    gdy = a * vf * ((1 - lx) * (v10 - v00) + lx * (v11 - v01))
    gdx = a * vf * ((1 - ly) * (v01 - v00) + ly * (v11 - v10))
    return gdy, gdx


@triton.jit
def _cmdyconv_fwd_kernel(x_ptr, kt_ptr, kv_ptr, off_ptr, out_ptr, C, H, W,
                         G, N, M, CM, OG, CG,
                         HAS_OFFSET: tl.constexpr,
                         MASK_SHARED: tl.constexpr,
                         OFF_SHARED: tl.constexpr, ACC: tl.constexpr,
                         N_PAD: tl.constexpr, BLOCK_P: tl.constexpr):
    pid_bg = tl.program_id(0)
    pid_p = tl.program_id(1)
    b = pid_bg // G
    j = pid_bg % G
    HW = H * W
    ci = tl.arange(0, N_PAD)
    cmask = ci < N
    c = j * N + ci
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < HW
    hh = p // W
    ww = p % W
    tmask = cmask[:, None] & pmask[None, :]
    kt = tl.load(kt_ptr + b * C + c, mask=cmask, other=0.).to(ACC)
    x_chan = x_ptr + (b * C + c).to(tl.int64)[:, None] * HW
    acc = tl.zeros((N_PAD, BLOCK_P), dtype=ACC)
    for k in tl.static_range(9):
        ky = k // 3 - 1
        kx = k % 3 - 1
        m = _load_mask(kv_ptr, b, c, j, k, p, pmask, tmask, M, N, CM, HW,
                       MASK_SHARED, ACC)
        if HAS_OFFSET:
            row = _offset_rows(b, c, j, k, OG, N, CG, OFF_SHARED)
            y0, x0, ly, lx, valid = _offset_plan(off_ptr, row, p, hh, ww,
                                                 ky, kx, tmask, H, W, ACC)
            v00, v01, v10, v11 = _gather4(
                x_chan + y0 * W + x0, 1, W, _ok(y0, x0, H, W, valid),
                _ok(y0, x0 + 1, H, W, valid), _ok(y0 + 1, x0, H, W, valid),
                _ok(y0 + 1, x0 + 1, H, W, valid), ACC)
            s = _bilinear(ly, lx, v00, v01, v10, v11)
        else:
            yy = hh + ky
            xx = ww + kx
            inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W) & pmask
            s = tl.load(x_chan + (yy * W + xx)[None, :],
                        mask=cmask[:, None] & inside[None, :],
                        other=0.).to(ACC)
        acc += kt[:, None] * m * s
    out = tl.sum(acc, axis=0)
    tl.store(out_ptr + (b * G + j).to(tl.int64) * HW + p, out, mask=pmask)


@triton.jit
def _cmdyconv_bwd_kernel(x_ptr, kt_ptr, kv_ptr, off_ptr, gout_ptr, gx_ptr,
                         gkt_ptr, gkv_ptr, goff_ptr, C, H, W, G, N, M, CM,
                         OG, CG,
                         HAS_OFFSET: tl.constexpr,
                         MASK_SHARED: tl.constexpr,
                         MASK_ATOMIC: tl.constexpr,
                         OFF_SHARED: tl.constexpr, OFF_ATOMIC: tl.constexpr,
                         ACC: tl.constexpr, N_PAD: tl.constexpr,
                         BLOCK_P: tl.constexpr):
    pid_bg = tl.program_id(0)
    pid_p = tl.program_id(1)
    b = pid_bg // G
    j = pid_bg % G
    HW = H * W
    ci = tl.arange(0, N_PAD)
    cmask = ci < N
    c = j * N + ci
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < HW
    hh = p // W
    ww = p % W
    tmask = cmask[:, None] & pmask[None, :]
    kt = tl.load(kt_ptr + b * C + c, mask=cmask, other=0.).to(ACC)[:, None]
    x_chan = x_ptr + (b * C + c).to(tl.int64)[:, None] * HW
    gx_chan = gx_ptr + (b * C + c).to(tl.int64)[:, None] * HW
    g_plane = gout_ptr + (b * G + j).to(tl.int64) * HW
    g = tl.load(g_plane + p, mask=pmask, other=0.).to(ACC)[None, :]
    gkt_acc = tl.zeros((N_PAD, BLOCK_P), dtype=ACC)
    gx_acc = tl.zeros((N_PAD, BLOCK_P), dtype=ACC)
    for k in tl.static_range(9):
        ky = k // 3 - 1
        kx = k % 3 - 1
        m = _load_mask(kv_ptr, b, c, j, k, p, pmask, tmask, M, N, CM, HW,
                       MASK_SHARED, ACC)
        if HAS_OFFSET:
            row = _offset_rows(b, c, j, k, OG, N, CG, OFF_SHARED)
            y0, x0, ly, lx, valid = _offset_plan(off_ptr, row, p, hh, ww,
                                                 ky, kx, tmask, H, W, ACC)
            ok00 = _ok(y0, x0, H, W, valid)
            ok01 = _ok(y0, x0 + 1, H, W, valid)
            ok10 = _ok(y0 + 1, x0, H, W, valid)
            ok11 = _ok(y0 + 1, x0 + 1, H, W, valid)
            i00 = y0 * W + x0
            v00, v01, v10, v11 = _gather4(x_chan + i00, 1, W, ok00, ok01,
                                          ok10, ok11, ACC)
            s = _bilinear(ly, lx, v00, v01, v10, v11)
            # gradient of the sample
            a = kt * m * g
            _scatter4(gx_chan + i00, 1, W, a, ly, lx, ok00, ok01, ok10, ok11)
            gdy, gdx = _offset_grads(a, valid.to(ACC), ly, lx, v00, v01, v10,
                                     v11)
            if OFF_SHARED:
                gptr = goff_ptr + row.to(tl.int64) * HW + p
                gdy1 = tl.sum(gdy, axis=0)
                gdx1 = tl.sum(gdx, axis=0)
                if OFF_ATOMIC:
                    _red(gptr, gdy1, mask=pmask)
                    _red(gptr + HW, gdx1, mask=pmask)
                else:
                    tl.store(gptr, gdy1, mask=pmask)
                    tl.store(gptr + HW, gdx1, mask=pmask)
            else:
                gptr = goff_ptr + row.to(tl.int64) * HW + p[None, :]
                if OFF_ATOMIC:
                    _red(gptr, gdy, mask=tmask)
                    _red(gptr + HW, gdx, mask=tmask)
                else:
                    tl.store(gptr, gdy, mask=tmask)
                    tl.store(gptr + HW, gdx, mask=tmask)
        else:
            yy = hh + ky
            xx = ww + kx
            inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W) & pmask
            s = tl.load(x_chan + (yy * W + xx)[None, :],
                        mask=cmask[:, None] & inside[None, :],
                        other=0.).to(ACC)
            # x at p was read by the output pixel q = p - (ky, kx) through
            # window position k: gather kV and g there
            qy = hh - ky
            qx = ww - kx
            qin = (qy >= 0) & (qy < H) & (qx >= 0) & (qx < W) & pmask
            q = qy * W + qx
            gq = tl.load(g_plane + q, mask=qin, other=0.).to(ACC)[None, :]
            qmask = cmask[:, None] & qin[None, :]
            if MASK_SHARED:
                row = (b * M + (j * N) // CM) * 9 + k
                mq = tl.load(kv_ptr + row.to(tl.int64) * HW + q, mask=qin,
                             other=0.).to(ACC)[None, :]
            else:
                row = (b * M + c // CM) * 9 + k
                mq = tl.load(kv_ptr + row.to(tl.int64)[:, None] * HW +
                             q[None, :], mask=qmask, other=0.).to(ACC)
            gx_acc += kt * mq * gq
        # kV and kT gradients (both need the sample at p)
        gm = kt * g * s
        if MASK_SHARED:
            row = (b * M + (j * N) // CM) * 9 + k
            gptr = gkv_ptr + row.to(tl.int64) * HW + p
            gm1 = tl.sum(gm, axis=0)
            if MASK_ATOMIC:
                _red(gptr, gm1, mask=pmask)
            else:
                tl.store(gptr, gm1, mask=pmask)
        else:
            row = (b * M + c // CM) * 9 + k
            gptr = gkv_ptr + row.to(tl.int64)[:, None] * HW + p[None, :]
            if MASK_ATOMIC:
                _red(gptr, gm, mask=tmask)
            else:
                tl.store(gptr, gm, mask=tmask)
        gkt_acc += m * g * s
    if not HAS_OFFSET:
        tl.store(gx_chan + p[None, :], gx_acc, mask=tmask)
    _red(gkt_ptr + b * C + c, tl.sum(gkt_acc, axis=1), mask=cmask)


@triton.jit
def _cl_samples(xb, p, hh, ww, ky, kx, off_ptr, b, k, c, pmask, H, W, C,
                ACC: tl.constexpr):
    """Bilinear samples (BLOCK_P, BLOCK_C) of window position ``k`` from the
    channels-last ``x`` of sample ``b`` (one offset field)."""
    HW = H * W
    orow = (b * 18 + 2 * k).to(tl.int64) * HW
    dy = tl.load(off_ptr + orow + p, mask=pmask, other=0.).to(ACC)
    dx = tl.load(off_ptr + orow + HW + p, mask=pmask, other=0.).to(ACC)
    py = (hh + ky).to(ACC) + dy
    px = (ww + kx).to(ACC) + dx
    y0, x0, ly, lx, valid = _plan(py, px, H, W, pmask)
    ok00 = _ok(y0, x0, H, W, valid)
    ok01 = _ok(y0, x0 + 1, H, W, valid)
    ok10 = _ok(y0 + 1, x0, H, W, valid)
    ok11 = _ok(y0 + 1, x0 + 1, H, W, valid)
    # (BLOCK_P, BLOCK_C) pointers and masks, channels contiguous
    off00 = (y0 * W + x0).to(tl.int64)[:, None] * C + c[None, :]
    ok00 = ok00[:, None]
    ok01 = ok01[:, None]
    ok10 = ok10[:, None]
    ok11 = ok11[:, None]
    v00, v01, v10, v11 = _gather4(xb + off00, C, W * C, ok00, ok01, ok10,
                                  ok11, ACC)
    return (off00, ok00, ok01, ok10, ok11, ly[:, None], lx[:, None],
            valid.to(ACC)[:, None], v00, v01, v10, v11)


@triton.jit
def _cl_fwd_kernel(xcl_ptr, kt_ptr, kv_ptr, off_ptr, out_ptr, C, H, W, G, M,
                   CM, N: tl.constexpr, ACC: tl.constexpr,
                   BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """One offset field: a program owns (sample, BLOCK_P pixels, BLOCK_C
    channels) of a channels-last ``x``, so that the bilinear plan is made
    once for all its channels and every gather reads contiguous
    channels."""
    b = tl.program_id(0)
    HW = H * W
    p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < HW
    hh = p // W
    ww = p % W
    c = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)
    kt = tl.load(kt_ptr + b * C + c).to(ACC)
    xb = xcl_ptr + b.to(tl.int64) * HW * C
    mrow = (b * M + c // CM) * 9
    acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=ACC)
    for k in tl.static_range(9):
        ky = k // 3 - 1
        kx = k % 3 - 1
        m = tl.load(kv_ptr + (mrow + k).to(tl.int64)[None, :] * HW +
                    p[:, None], mask=pmask[:, None], other=0.).to(ACC)
        (_, _, _, _, _, ly, lx, _, v00, v01, v10, v11) = _cl_samples(
            xb, p, hh, ww, ky, kx, off_ptr, b, k, c, pmask, H, W, C, ACC)
        acc += m * _bilinear(ly, lx, v00, v01, v10, v11)
    acc = acc * kt[None, :]
    res = tl.sum(tl.reshape(acc, (BLOCK_P, BLOCK_C // N, N)), axis=2)
    j = tl.program_id(2) * (BLOCK_C // N) + tl.arange(0, BLOCK_C // N)
    tl.store(out_ptr + (b * G + j).to(tl.int64)[None, :] * HW + p[:, None],
             res, mask=pmask[:, None])


@triton.jit
def _cl_bwd_kernel(xcl_ptr, kt_ptr, kv_ptr, off_ptr, gout_ptr, gxcl_ptr,
                   gkt_ptr, gkv_ptr, goff_ptr, C, H, W, G, M,
                   N: tl.constexpr, CM: tl.constexpr, ACC: tl.constexpr,
                   BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """Backward of :func:`_cl_fwd_kernel`: the ``x`` gradient is scattered
    (atomic adds) into a channels-last buffer, contiguous over the tile's
    channels; the offset gradient of the tile is summed over its channels
    and stored in plane ``(b, program_id(2))`` of a (B, C // BLOCK_C, 18,
    H, W) buffer (no atomics); ``kV`` rows are stored (summed first when
    ``CM`` channels share one)."""
    b = tl.program_id(0)
    cb = tl.program_id(2)
    HW = H * W
    p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < HW
    hh = p // W
    ww = p % W
    c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    kt = tl.load(kt_ptr + b * C + c).to(ACC)[None, :]
    xb = xcl_ptr + b.to(tl.int64) * HW * C
    gxb = gxcl_ptr + b.to(tl.int64) * HW * C
    g = tl.load(gout_ptr + (b * G + c // N).to(tl.int64)[None, :] * HW +
                p[:, None], mask=pmask[:, None], other=0.).to(ACC)
    mrow = (b * M + c // CM) * 9
    nb = C // BLOCK_C
    gkt_acc = tl.zeros((BLOCK_P, BLOCK_C), dtype=ACC)
    for k in tl.static_range(9):
        ky = k // 3 - 1
        kx = k % 3 - 1
        m = tl.load(kv_ptr + (mrow + k).to(tl.int64)[None, :] * HW +
                    p[:, None], mask=pmask[:, None], other=0.).to(ACC)
        (off00, ok00, ok01, ok10, ok11, ly, lx, vf, v00, v01, v10,
         v11) = _cl_samples(xb, p, hh, ww, ky, kx, off_ptr, b, k, c, pmask,
                            H, W, C, ACC)
        s = _bilinear(ly, lx, v00, v01, v10, v11)
        a = kt * m * g
        _scatter4(gxb + off00, C, W * C, a, ly, lx, ok00, ok01, ok10, ok11)
        gdy, gdx = _offset_grads(a, vf, ly, lx, v00, v01, v10, v11)
        gdy = tl.sum(gdy, axis=1)
        gdx = tl.sum(gdx, axis=1)
        orow = ((b * nb + cb) * 18 + 2 * k).to(tl.int64) * HW
        tl.store(goff_ptr + orow + p, gdy, mask=pmask)
        tl.store(goff_ptr + orow + HW + p, gdx, mask=pmask)
        gm = kt * g * s
        if CM == 1:
            tl.store(gkv_ptr + (mrow + k).to(tl.int64)[None, :] * HW +
                     p[:, None], gm, mask=pmask[:, None])
        else:
            gm1 = tl.sum(tl.reshape(gm, (BLOCK_P, BLOCK_C // CM, CM)),
                         axis=2)
            mm = cb * (BLOCK_C // CM) + tl.arange(0, BLOCK_C // CM)
            tl.store(gkv_ptr + ((b * M + mm) * 9 + k).to(tl.int64)[None, :]
                     * HW + p[:, None], gm1, mask=pmask[:, None])
        gkt_acc += m * g * s
    _red(gkt_ptr + b * C + c, tl.sum(gkt_acc, axis=0), mask=c < C)


def _cl_block_c(c: int, n: int, cm: int):
    """Channels per program of the channels-last kernels, or None where
    they do not apply (see :func:`_use_channels_last`)."""
    block = min(CL_BLOCK_C, c)
    if (block & (block - 1) or c % block or n & (n - 1) or block % n
            or cm & (cm - 1) or block % cm):
        return None
    return block


def _use_channels_last(x: Tensor, kv: Tensor, offset, groups: int):
    """The channels-last kernels serve one shared offset field with
    power-of-two group sizes; returns their BLOCK_C or None."""
    if not CHANNELS_LAST or offset is None or offset.shape[1] != 18:
        return None
    c = x.shape[1]
    return _cl_block_c(c, c // groups, c // (kv.shape[1] // 9))


def _meta(x: Tensor, kv: Tensor, offset, groups: int) -> dict:
    b, c, h, w = x.shape
    n = c // groups
    mg = kv.shape[1] // 9
    cm = c // mg
    og = offset.shape[1] // 18 if offset is not None else 1
    cg = c // og
    n_pad = triton.next_power_of_2(n)
    mask_shared = cm % n == 0
    off_shared = cg % n == 0
    return dict(
        dims=(c, h, w, groups, n, mg, cm, og, cg),
        HAS_OFFSET=offset is not None,
        MASK_SHARED=mask_shared,
        # several programs (or channels of one tile) add to one kV row
        MASK_ATOMIC=(cm > n) if mask_shared else (cm > 1),
        OFF_SHARED=off_shared,
        OFF_ATOMIC=(cg > n) if off_shared else (cg > 1),
        N_PAD=n_pad,
        # (N_PAD, BLOCK_P) tiles of ~1024 values keep registers unspilled
        BLOCK_P=max(16, min(MAX_BLOCK_P, TILE_ELEMS // n_pad)),
    )


_ACC = {
    torch.float64: tl.float64,
}


class _TritonCMDyConv(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, kt, kv, offset, groups):
        block_c = _use_channels_last(x, kv, offset, groups)
        ctx.block_c = block_c
        ctx.groups = groups
        if block_c is not None:
            return _cl_forward(ctx, x, kt, kv, offset, groups, block_c)
        meta = _meta(x, kv, offset, groups)
        b, _, h, w = x.shape
        acc = _ACC.get(x.dtype, tl.float32)
        out = x.new_empty(b, groups, h, w)
        grid = (b * groups, triton.cdiv(h * w, meta['BLOCK_P']))
        off_arg = offset if offset is not None else x
        _cmdyconv_fwd_kernel[grid](
            x, kt, kv, off_arg, out, *meta['dims'],
            HAS_OFFSET=meta['HAS_OFFSET'],
            MASK_SHARED=meta['MASK_SHARED'],
            OFF_SHARED=meta['OFF_SHARED'],
            ACC=acc,
            N_PAD=meta['N_PAD'],
            BLOCK_P=meta['BLOCK_P'],
            num_warps=NUM_WARPS)
        ctx.save_for_backward(x, kt, kv, offset)
        return out

    @staticmethod
    def backward(ctx, gout):
        if ctx.block_c is not None:
            return _cl_backward(ctx, gout)
        x, kt, kv, offset = ctx.saved_tensors
        groups = ctx.groups
        meta = _meta(x, kv, offset, groups)
        b, _, h, w = x.shape
        acc = _ACC.get(x.dtype, tl.float32)
        gout = gout.contiguous().to(x.dtype)
        gx = torch.zeros_like(x)
        gkt = torch.zeros_like(kt)
        gkv = torch.zeros_like(kv)
        goff = torch.zeros_like(offset) if offset is not None else None
        grid = (b * groups, triton.cdiv(h * w, meta['BLOCK_P']))
        _cmdyconv_bwd_kernel[grid](
            x, kt, kv, offset if offset is not None else x, gout, gx, gkt,
            gkv, goff if goff is not None else gx, *meta['dims'],
            HAS_OFFSET=meta['HAS_OFFSET'],
            MASK_SHARED=meta['MASK_SHARED'],
            MASK_ATOMIC=meta['MASK_ATOMIC'],
            OFF_SHARED=meta['OFF_SHARED'],
            OFF_ATOMIC=meta['OFF_ATOMIC'],
            ACC=acc,
            N_PAD=meta['N_PAD'],
            BLOCK_P=meta['BLOCK_P'],
            num_warps=NUM_WARPS)
        return gx, gkt, gkv, goff, None


def _cl_forward(ctx, x, kt, kv, offset, groups, block_c):
    b, c, h, w = x.shape
    xcl = x.permute(0, 2, 3, 1).contiguous()
    out = x.new_empty(b, groups, h, w)
    grid = (b, triton.cdiv(h * w, CL_BLOCK_P), c // block_c)
    _cl_fwd_kernel[grid](
        xcl, kt, kv, offset, out, c, h, w, groups, kv.shape[1] // 9,
        c // (kv.shape[1] // 9),
        N=c // groups,
        ACC=_ACC.get(x.dtype, tl.float32),
        BLOCK_P=CL_BLOCK_P,
        BLOCK_C=block_c,
        num_warps=CL_NUM_WARPS)
    ctx.save_for_backward(xcl, kt, kv, offset)
    return out


def _cl_backward(ctx, gout):
    xcl, kt, kv, offset = ctx.saved_tensors
    block_c, groups = ctx.block_c, ctx.groups
    b, h, w, c = xcl.shape
    mg = kv.shape[1] // 9
    gout = gout.contiguous().to(xcl.dtype)
    gxcl = torch.zeros_like(xcl)
    gkt = torch.zeros_like(kt)
    gkv = torch.empty_like(kv)  # every element is stored
    goff_buf = xcl.new_empty(b, c // block_c, 18, h, w)
    grid = (b, triton.cdiv(h * w, CL_BLOCK_P), c // block_c)
    _cl_bwd_kernel[grid](
        xcl, kt, kv, offset, gout, gxcl, gkt, gkv, goff_buf, c, h, w, groups,
        mg,
        N=c // groups,
        CM=c // mg,
        ACC=_ACC.get(xcl.dtype, tl.float32),
        BLOCK_P=CL_BLOCK_P,
        BLOCK_C=block_c,
        num_warps=CL_NUM_WARPS)
    gx = gxcl.permute(0, 3, 1, 2)
    goff = goff_buf.sum(1) if goff_buf.shape[1] > 1 else goff_buf[:, 0]
    return gx, gkt, gkv, goff.view_as(offset), None


def triton_cmdyconv(x: Tensor, kt: Tensor, kv: Tensor,
                    offset, groups: int) -> Tensor:
    """Fused CMDyConv (eq. 11 / 12 without ``P``).

    Args:
        x (Tensor): (B, C, H, W) visual features.
        kt (Tensor): (B, C) text kernel.
        kv (Tensor): (B, M * 9, H, W), ``M`` dividing ``C``.
        offset (Tensor | None): (B, OG * 18, H, W), ``OG`` dividing ``C``.
        groups (int): G.

    Returns:
        Tensor: (B, G, H, W) in the dtype of ``x``.
    """
    if x.device.type != 'cuda' and not INTERPRET:
        raise RuntimeError(
            'CMDyConv backend "triton" needs CUDA tensors (got '
            f'{x.device}); set TRITON_INTERPRET=1 before importing '
            'cmdyseg.models.layers.cmdyconv_triton to run its interpreter')
    dtype = x.dtype
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    args = [
        t.to(compute).contiguous() if t is not None else None
        for t in (x, kt, kv, offset)
    ]
    out = _TritonCMDyConv.apply(*args, groups)
    return out.to(dtype)
