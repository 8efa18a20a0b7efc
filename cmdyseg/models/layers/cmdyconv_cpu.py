# Copyright (c) cmdyseg contributors. All rights reserved.
r"""The ``'cpp'`` backend of the CMDyConv operation: compiled CPU kernels
(``csrc/cmdyconv_cpu.cpp``, built by ``pip install`` as
``cmdyseg.models.layers._cmdyconv_cpu``), the CPU default of ``'auto'``
when they are built.

With offsets (DCMDyConv, eq. 12) one forward and one backward kernel do
the whole operation: ``x`` is copied once, zero-padded and channels-last,
so that the four bilinear neighbours of a sample are four contiguous
channel vectors; the kernels walk tiles of 16 pixels, transpose the mask
tile of one window position in a small buffer and read or write every
large tensor (the mask, its gradient) once. No column buffer, no sort, no
atomic: the backward pass owns one sample per thread (its scatter into the
``x`` gradient would race between pixel tiles of one sample), the forward
pass splits (sample, tile) pairs over torch's intra-op threads.

Without offsets (CMDyConv, eq. 11) the pure-PyTorch shifted formulation of
:mod:`.cmdyconv_torch` is faster (nine vectorised ``addcmul`` on
contiguous planes, measured by ``tools/analysis/benchmark_op.py``) and is
used instead; so are dtypes other than float32 / float64.

Sampling follows mmcv's ``modulated_deform_conv2d`` exactly as the other
backends do (see :mod:`.cmdyconv_torch`).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from cmdyseg.utils.optional import OptionalImport
from .cmdyconv_torch import torch_cmdyconv

KERNEL_DTYPES = (torch.float32, torch.float64)
# The compiled module; ``EXTENSION.available`` / ``.error`` say whether it
# imports and why not.
EXTENSION = OptionalImport(
    f'{__package__}._cmdyconv_cpu',
    what="cmdyseg's compiled CPU kernels "
    f'({__package__}._cmdyconv_cpu)',
    install='Reinstall cmdyseg with `pip install --no-build-isolation -e .` '
    '(torch installed first, CMDYSEG_WITH_OPS unset), or use '
    'backend="torch" or "auto"')


def load_extension():
    """The compiled module, or None when it is not built (see
    ``EXTENSION.error`` for why)."""
    return EXTENSION.get()


class _CompiledCMDyConv(torch.autograd.Function):
    """See :func:`cpp_cmdyconv`."""

    @staticmethod
    def forward(ctx, x: Tensor, mask: Tensor, offset: Tensor,
                groups: int) -> Tensor:
        ext = EXTENSION.get()
        # zero-padded, channels-last: (B, H + 2, W + 2, C)
        xcl = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1).contiguous()
        out = ext.forward(xcl, mask, offset, groups)
        ctx.save_for_backward(xcl, mask, offset)
        ctx.groups = groups
        return out

    @staticmethod
    def backward(ctx, gout: Tensor):
        xcl, mask, offset = ctx.saved_tensors
        ext = EXTENSION.get()
        gxcl, gmask, goff = ext.backward(gout.contiguous(), xcl, mask,
                                         offset, ctx.groups)
        # a channels-last view; autograd takes any strides
        gx = gxcl[:, 1:-1, 1:-1].permute(0, 3, 1, 2)
        return gx, gmask, goff, None


def cpp_cmdyconv(x: Tensor, mask: Tensor, offset: Optional[Tensor],
                 groups: int) -> Tensor:
    """The ``'cpp'`` backend: the compiled kernels with offsets (float32 /
    float64 CPU tensors), :func:`.cmdyconv_torch.torch_cmdyconv` otherwise.

    Args:
        x (Tensor): (B, C, H, W), already scaled by ``kt``.
        mask (Tensor): (B, M * 9, H, W), ``M`` dividing ``C``.
        offset (Tensor, optional): (B, O * 18, H, W), ``O`` dividing ``C``.
        groups (int): G, dividing ``C``.

    Returns:
        Tensor: (B, G, H, W).
    """
    if (offset is None or x.device.type != 'cpu'
            or x.dtype not in KERNEL_DTYPES):
        return torch_cmdyconv(x, mask, offset, groups)
    EXTENSION.require("CMDyConv backend 'cpp'")
    return _CompiledCMDyConv.apply(x.contiguous(),
                                   mask.to(x.dtype).contiguous(),
                                   offset.to(x.dtype).contiguous(), groups)
