# Copyright (c) cmdyseg contributors. All rights reserved.
r"""Fast pure-PyTorch backend of the CMDyConv operation (the ``'torch'``
backend, the CPU default of ``'auto'``).

Both functions compute, for ``x`` (B, C, H, W) already scaled by
:math:`k^T`, the modulated grouped 3x3 sum

.. math::

    R_j(p) = \sum_{c \in j} \sum_{l \in \Omega} m_{c,l}(p)
             \, x_c(p + l + \Delta l(p))

with the channel layouts documented in :mod:`.cmdyconv`. They never build
the (B, C * 9, H, W) column buffer of the ``F.unfold`` formulation: the
3x3 window is walked one position ``l`` at a time and every temporary has
the size of ``x`` (the only 9x tensors are the mask itself and its
gradient). Forward and backward are written by hand
(:class:`torch.autograd.Function`), so autograd stores the inputs only.

* :func:`shifted_cmdyconv` (no offsets, CMDyConv eq. 11): each window
  position is a shifted view of the zero-padded ``x``; the forward pass is
  nine ``addcmul`` into one (B, C, H, W) accumulator, the backward pass
  nine ``addcmul`` into the shifted gradient and nine products for the
  mask gradient.
* :func:`gathered_cmdyconv` (offsets, DCMDyConv eq. 12): ``x`` is stored
  channels-last as "quads" -- for every integer position the four
  bilinear neighbours (y, x), (y, x+1), (y+1, x), (y+1, x+1) of every
  channel side by side -- so the bilinear sampling of one window position
  for all pixels is one row gather (``index_select``) of contiguous
  ``4 * C / O`` vectors, shared by the ``C / O`` channels of an offset
  group, followed by a weighted sum of the four neighbours. The backward
  pass scatters with ``index_add_`` and gets the offset gradient from the
  same gathered neighbours and the derivatives of the bilinear weights.

Sampling follows mmcv's ``modulated_deform_conv2d``: position
``(h - 1 + ky + dy, w - 1 + kx + dx)``; a sample outside
``(-1, H) x (-1, W)`` is zero and has zero gradient; neighbours outside
the image are zero; at an integer position the offset gradient is the
one-sided difference towards ``+1`` (what ``floor`` gives).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

# The 3x3 window of the operation, for every module of cmdyseg. Defined
# here because this module imports nothing of cmdyseg:
# tools/analysis/benchmark_op_cuda.py loads it from its file on machines
# without mmengine / mmcv.
KERNEL_SIZE = 3
KERNEL_POINTS = KERNEL_SIZE * KERNEL_SIZE


def _window(l: int):  # noqa: E741
    """Row and column displacement + 1 of window position ``l``."""
    return divmod(l, KERNEL_SIZE)


# --------------------------------------------------------------------------
# no offsets
# --------------------------------------------------------------------------
class _ShiftedCMDyConv(torch.autograd.Function):
    """See :func:`shifted_cmdyconv`."""

    @staticmethod
    def forward(ctx, x: Tensor, mask: Tensor, groups: int) -> Tensor:
        b, c, h, w = x.shape
        mg = mask.shape[1] // KERNEL_POINTS
        k = c // mg
        xp = F.pad(x, (1, 1, 1, 1)).view(b, mg, k, h + 2, w + 2)
        m = mask.view(b, mg, 1, KERNEL_POINTS, h, w)
        acc = x.new_empty(b, mg, k, h, w)
        for l in range(KERNEL_POINTS):  # noqa: E741
            ky, kx = _window(l)
            win = xp[..., ky:ky + h, kx:kx + w]
            if l == 0:
                torch.mul(win, m[:, :, :, l], out=acc)
            else:
                acc.addcmul_(win, m[:, :, :, l])
        ctx.save_for_backward(xp, mask)
        ctx.groups = groups
        return acc.view(b, groups, c // groups, h, w).sum(2)

    @staticmethod
    def backward(ctx, gout: Tensor):
        xp, mask = ctx.saved_tensors
        gout = gout.contiguous()  # e.g. the expanded gradient of .sum()
        b, mg, k, hp, wp = xp.shape
        h, w = hp - 2, wp - 2
        c = mg * k
        groups = ctx.groups
        # gout of each channel's group, (B, M, C // M, H, W)
        gc = gout.view(b, groups, 1, h, w).expand(b, groups, c // groups, h,
                                                  w).reshape(b, mg, k, h, w)
        m = mask.view(b, mg, 1, KERNEL_POINTS, h, w)
        gm = gx = None
        if ctx.needs_input_grad[1]:
            gm = mask.new_empty(b, mg, KERNEL_POINTS, h, w)
        if ctx.needs_input_grad[0]:
            gxp = xp.new_zeros(b, mg, k, hp, wp)
        for l in range(KERNEL_POINTS):  # noqa: E741
            ky, kx = _window(l)
            win = xp[..., ky:ky + h, kx:kx + w]
            if gm is not None:
                if k == 1:
                    torch.mul(win[:, :, 0], gc[:, :, 0], out=gm[:, :, l])
                else:
                    torch.sum(win * gc, 2, out=gm[:, :, l])
            if ctx.needs_input_grad[0]:
                gxp[..., ky:ky + h, kx:kx + w].addcmul_(m[:, :, :, l], gc)
        if ctx.needs_input_grad[0]:
            gx = gxp.view(b, c, hp, wp)[:, :, 1:-1, 1:-1]
        if gm is not None:
            gm = gm.view(b, mg * KERNEL_POINTS, h, w)
        return gx, gm, None


def shifted_cmdyconv(x: Tensor, mask: Tensor, groups: int) -> Tensor:
    """Modulated grouped 3x3 sum without offsets.

    Args:
        x (Tensor): (B, C, H, W), already scaled by ``kt``.
        mask (Tensor): (B, M * 9, H, W), ``M`` dividing ``C``.
        groups (int): G, dividing ``C``.

    Returns:
        Tensor: (B, G, H, W).
    """
    return _ShiftedCMDyConv.apply(x.contiguous(), mask.contiguous(), groups)


# --------------------------------------------------------------------------
# offsets
# --------------------------------------------------------------------------
def _sampling_plan(offset: Tensor, h: int, w: int, dtype: torch.dtype):
    """Quad row indices and bilinear terms of every sample.

    Args:
        offset (Tensor): (B, O * 18, H, W).

    Returns:
        tuple: ``rows`` (9, B * H * W * O) int64 -- the quad row of the
        top-left neighbour of window position ``l`` of pixel ``(h, w)`` for
        offset group ``o``, in that (b, h, w, o) order -- and ``ly``,
        ``lx``, ``valid``, each (9, B, H, W, O): the fractional parts and
        whether the sample lies inside ``(-1, H) x (-1, W)``.
    """
    b = offset.shape[0]
    og = offset.shape[1] // (2 * KERNEL_POINTS)
    dev = offset.device
    # (9, 2, B, H, W, O)
    # one copy to this layout keeps every op below contiguous
    off = offset.to(dtype).view(b, og, KERNEL_POINTS, 2, h,
                                w).permute(2, 3, 0, 4, 5, 1).contiguous()
    lpos = torch.arange(KERNEL_POINTS, device=dev)
    ky = (lpos // KERNEL_SIZE - 1).to(dtype).view(KERNEL_POINTS, 1, 1, 1, 1)
    kx = (lpos % KERNEL_SIZE - 1).to(dtype).view(KERNEL_POINTS, 1, 1, 1, 1)
    hh = torch.arange(h, device=dev, dtype=dtype).view(1, 1, h, 1, 1)
    ww = torch.arange(w, device=dev, dtype=dtype).view(1, 1, 1, w, 1)
    # integer part first, so that zero offsets land exactly on pixels
    py = (hh + ky) + off[:, 0]  # (9, B, H, W, O)
    px = (ww + kx) + off[:, 1]
    y0 = torch.floor(py)
    x0 = torch.floor(px)
    ly = py - y0
    lx = px - x0
    valid = ((py > -1) & (py < h) & (px > -1) & (px < w)).to(dtype)
    # quad grid is the zero-padded image's (H + 1) x (W + 1) top-left
    # corners; for valid samples y0 + 1 is in [0, H] already
    yq = (y0 + 1).clamp_(0, h).long()
    xq = (x0 + 1).clamp_(0, w).long()
    bb = torch.arange(b, device=dev).view(1, b, 1, 1, 1)
    oo = torch.arange(og, device=dev).view(1, 1, 1, 1, og)
    rows = ((bb * (h + 1) + yq) * (w + 1) + xq) * og + oo
    return rows.reshape(KERNEL_POINTS, -1), ly, lx, valid


def _bilinear_weights(ly: Tensor, lx: Tensor, valid: Tensor) -> Tensor:
    """(..., 4) weights of the neighbours (y, x), (y, x+1), (y+1, x),
    (y+1, x+1); zero for invalid samples."""
    out = ly.new_empty(*ly.shape, 4)
    hy = (1 - ly).mul_(valid)
    lyv = ly * valid
    hx = 1 - lx
    torch.mul(hy, hx, out=out[..., 0])
    torch.mul(hy, lx, out=out[..., 1])
    torch.mul(lyv, hx, out=out[..., 2])
    torch.mul(lyv, lx, out=out[..., 3])
    return out


def _quads(x: Tensor, og: int) -> Tensor:
    """(B * (H + 1) * (W + 1) * O, 4, C / O) channels-last quads of the
    zero-padded ``x`` (B, C, H, W)."""
    b, c, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1).reshape(
        b, h + 2, w + 2, og, c // og)
    quads = torch.stack([
        xp[:, :-1, :-1], xp[:, :-1, 1:], xp[:, 1:, :-1], xp[:, 1:, 1:]
    ], 4)  # (B, H + 1, W + 1, O, 4, C / O)
    return quads.view(-1, 4, c // og)


def _interpolate(vals: Tensor, wts: Tensor, out: Tensor) -> Tensor:
    """Weighted sum of the four neighbours into ``out`` (R, K): ``vals``
    (R, 4, K), ``wts`` (R, 4, 1)."""
    torch.mul(vals[:, 0], wts[:, 0], out=out)
    for q in range(1, 4):
        out.addcmul_(vals[:, q], wts[:, q])
    return out


class _GatheredCMDyConv(torch.autograd.Function):
    """See :func:`gathered_cmdyconv`."""

    @staticmethod
    def forward(ctx, x: Tensor, mask: Tensor, offset: Tensor,
                groups: int) -> Tensor:
        b, c, h, w = x.shape
        hw = h * w
        mg = mask.shape[1] // KERNEL_POINTS
        og = offset.shape[1] // (2 * KERNEL_POINTS)
        quads = _quads(x, og)
        rows, ly, lx, valid = _sampling_plan(offset, h, w, x.dtype)
        # (9, B * HW * O, 4, 1)
        wts = _bilinear_weights(ly, lx, valid).view(KERNEL_POINTS, -1, 4, 1)
        # mask of window position l, channels-last (B, HW, M, 1)
        mask_cl = mask.view(b, mg, KERNEL_POINTS, hw).permute(2, 0, 3, 1)
        acc = x.new_zeros(b, hw, mg, c // mg)
        # buffers reused by every window position (fresh allocations of
        # this size cost page faults)
        vals = quads.new_empty(rows.shape[1], 4, c // og)
        sample = x.new_empty(rows.shape[1], c // og)
        for l in range(KERNEL_POINTS):  # noqa: E741
            torch.index_select(quads, 0, rows[l], out=vals)
            _interpolate(vals, wts[l], sample)
            acc.addcmul_(
                sample.view(b, hw, mg, c // mg), mask_cl[l].unsqueeze(-1))
        out = acc.view(b, hw, groups, c // groups).sum(-1)
        ctx.save_for_backward(quads, mask, rows, ly, lx, valid)
        ctx.meta = (b, c, h, w, groups)
        return out.permute(0, 2, 1).reshape(b, groups, h, w)

    @staticmethod
    def backward(ctx, gout: Tensor):
        quads, mask, rows, ly, lx, valid = ctx.saved_tensors
        gout = gout.contiguous()  # e.g. the expanded gradient of .sum()
        b, c, h, w, groups = ctx.meta
        hw = h * w
        mg = mask.shape[1] // KERNEL_POINTS
        og = quads.shape[0] // (b * (h + 1) * (w + 1))
        cg = c // og
        n = c // groups
        wts = _bilinear_weights(ly, lx, valid).view(KERNEL_POINTS, -1, 4, 1)
        mask_cl = mask.view(b, mg, KERNEL_POINTS, hw).permute(2, 0, 3, 1)
        # channels-last gout of each channel's group, (B, HW, G, N)
        g = gout.reshape(b, groups, hw).transpose(1, 2).unsqueeze(-1)
        # the same per channel, (B, HW, M, C / M)
        gc = g.expand(b, hw, groups, n).reshape(b, hw, mg, c // mg)
        need_x, need_mask, need_off = ctx.needs_input_grad[:3]
        gquads = torch.zeros_like(quads) if need_x else None
        gm = mask.new_empty(b, mg, KERNEL_POINTS, hw) if need_mask else None
        gw = quads.new_empty(KERNEL_POINTS, rows.shape[1], 4) \
            if need_off else None
        r = rows.shape[1]
        vals = quads.new_empty(r, 4, cg)  # buffers, as in forward
        sample = quads.new_empty(r, cg)
        gs = quads.new_empty(r, 1, cg)
        scattered = quads.new_empty(r, 4, cg) if need_x else None
        for l in range(KERNEL_POINTS):  # noqa: E741
            torch.index_select(quads, 0, rows[l], out=vals)
            if need_mask:
                _interpolate(vals, wts[l], sample)
                gml = gm[:, :, l].transpose(1, 2)  # (B, HW, M) view
                if mg == c:
                    torch.mul(
                        sample.view(b, hw, groups, n), g,
                        out=gml.view(b, hw, groups, n))
                else:
                    gml.copy_((sample.view(b, hw, groups, n) * g).view(
                        b, hw, mg, c // mg).sum(-1))
            # gradient of the sample, (B * HW * O, 1, C / O)
            torch.mul(
                gc, mask_cl[l].unsqueeze(-1), out=gs.view(b, hw, mg, -1))
            if need_x:
                torch.mul(gs, wts[l], out=scattered)
                gquads.index_add_(0, rows[l], scattered)
            if need_off:
                # sum over channels of neighbour value x sample gradient
                if cg == 1:
                    torch.mul(vals.view(r, 4), gs.view(r, 1), out=gw[l])
                else:
                    torch.bmm(
                        vals, gs.transpose(1, 2), out=gw[l].unsqueeze(-1))
        gx = goff = None
        if need_x:
            gq = gquads.view(b, h + 1, w + 1, og, 4, cg)
            gxp = quads.new_zeros(b, h + 2, w + 2, og, cg)
            gxp[:, :-1, :-1] += gq[..., 0, :]
            gxp[:, :-1, 1:] += gq[..., 1, :]
            gxp[:, 1:, :-1] += gq[..., 2, :]
            gxp[:, 1:, 1:] += gq[..., 3, :]
            gx = gxp[:, 1:-1, 1:-1].reshape(b, h, w, c).permute(0, 3, 1, 2)
        if need_off:
            gw = gw.view(KERNEL_POINTS, b, h, w, og, 4)
            g00, g01, g10, g11 = gw.unbind(-1)
            gpy = valid * ((1 - lx) * (g10 - g00) + lx * (g11 - g01))
            gpx = valid * ((1 - ly) * (g01 - g00) + ly * (g11 - g10))
            # (9, 2, B, H, W, O) -> (B, O, 9, 2, H, W)
            goff = torch.stack([gpy, gpx], 1).permute(2, 5, 0, 1, 3, 4)
            goff = goff.reshape(b, og * 2 * KERNEL_POINTS, h, w)
        if need_mask:
            gm = gm.view(b, mg * KERNEL_POINTS, h, w)
        return gx, gm, goff, None


def gathered_cmdyconv(x: Tensor, mask: Tensor, offset: Tensor,
                      groups: int) -> Tensor:
    """Modulated grouped deformable 3x3 sum (bilinear sampling).

    Args:
        x (Tensor): (B, C, H, W), already scaled by ``kt``.
        mask (Tensor): (B, M * 9, H, W), ``M`` dividing ``C``.
        offset (Tensor): (B, O * 18, H, W), ``O`` dividing ``C``, mmcv's
            ``(dy, dx)`` layout.
        groups (int): G, dividing ``C``.

    Returns:
        Tensor: (B, G, H, W).
    """
    return _GatheredCMDyConv.apply(x.contiguous(), mask.contiguous(),
                                   offset.contiguous(), groups)


def torch_cmdyconv(x: Tensor, mask: Tensor, offset: Optional[Tensor],
                   groups: int) -> Tensor:
    """The ``'torch'`` backend: :func:`shifted_cmdyconv` without offsets,
    :func:`gathered_cmdyconv` with them."""
    if offset is None:
        return shifted_cmdyconv(x, mask, groups)
    return gathered_cmdyconv(x, mask.to(x.dtype), offset, groups)
