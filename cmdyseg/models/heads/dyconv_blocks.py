# Copyright (c) cmdyseg contributors. All rights reserved.
"""One interaction module of each head (the unit that is stacked).

Every block maps ``x`` (B, C, H, W), ``text`` (B, D_T) and coordinate maps
``coords`` (B, D_C, H, W) to

* an intermediate block (``last=False``): ``act(x + norm(R))`` with ``R``
  (B, C, H, W) -- the residual connection of the paper's stacking;
* the last block (``last=True``): the 1-channel response map ``R^M``
  (B, 1, H, W), logits.

``norm_cfg`` / ``act_cfg`` apply to intermediate blocks only (the paper
mentions batch normalisation but not where; a post-activation residual as
in ResNet is our choice).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from ..layers import KERNEL_POINTS, cmdyconv


def _check_groups(in_channels: int, groups: int, owner: str):
    if groups < 1 or in_channels % groups:
        raise ValueError(f'{owner}: groups={groups} must divide '
                         f'in_channels={in_channels}')


class _ResidualOutput(BaseModule):
    """Shared tail: ``P`` (1x1 conv over ``[G(k, F), C]``) and, for
    intermediate blocks, norm + residual + activation.

    With ``coord_kernel`` (not in the paper) ``C`` is first scaled by a text
    kernel ``k^C = act(FC_C(F_T))`` (B, D_C), as the DyConv baseline's
    kernel covers its coordinate channels: ``P([G(k, F), k^C * C])``. In
    eq. 8 ``P`` is a static 1x1 conv, so the coordinates reach the response
    as one sentence-independent map per block, and a sentence can only
    select a position through what earlier blocks wrote into the features.
    """

    def __init__(self,
                 in_channels: int,
                 p_in_channels: int,
                 last: bool,
                 norm_cfg: Optional[dict],
                 act_cfg: Optional[dict],
                 init_cfg=None,
                 text_channels: int = 0,
                 coord_channels: int = 0,
                 coord_kernel: bool = False,
                 kernel_act_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.last = last
        if coord_kernel and coord_channels:
            self.coord_fc = nn.Linear(text_channels, coord_channels)
            self.coord_act = (
                build_activation_layer(kernel_act_cfg)
                if kernel_act_cfg is not None else nn.Identity())
        else:
            self.coord_fc = None
        out_channels = 1 if last else in_channels
        with_norm = norm_cfg is not None and not last
        self.pointwise = nn.Conv2d(
            p_in_channels, out_channels, 1, bias=not with_norm)
        self.norm = (
            build_norm_layer(norm_cfg, in_channels)[1]
            if with_norm else nn.Identity())
        self.act = (
            build_activation_layer(act_cfg)
            if act_cfg is not None and not last else nn.Identity())

    def _finish(self, x: Tensor, g: Tensor, coords: Tensor,
                text: Tensor) -> Tensor:
        coords = coords.to(g.dtype)
        if self.coord_fc is not None:
            kc = self.coord_act(self.coord_fc(text)).to(g.dtype)
            coords = coords * kc[:, :, None, None]
        r = self.pointwise(torch.cat([g, coords], 1))
        if self.last:
            return r
        return self.act(x + self.norm(r))


class GroupDyConvBlock(_ResidualOutput):
    r"""Groupwise dynamic convolution, eq. 7-8 ("Our DyConv").

    ``k = act(W_k F_T + b_k)`` (B, C) (eq. 5, tanh by default);
    ``G(k, F)_j = \sum_{i<N} k_{i,j} F_{i,j}`` (B, G, H, W);
    ``R = P([G(k, F), C])``.

    Args:
        in_channels (int): C = N * G.
        text_channels (int): D_T.
        groups (int): G.
        coord_channels (int): D_C, channels of ``coords``.
        last (bool): emit the 1-channel response map instead of a residual
            update.
        kernel_act_cfg (dict | None): activation of the text kernel
            (default Tanh, eq. 5).
        coord_kernel (bool): scale ``C`` by a text kernel too (not in the
            paper; see :class:`_ResidualOutput`). Default False.
        norm_cfg, act_cfg (dict | None): of intermediate blocks.
    """

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 groups: int,
                 coord_channels: int,
                 last: bool,
                 kernel_act_cfg: Optional[dict] = dict(type='Tanh'),
                 coord_kernel: bool = False,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg=None):
        _check_groups(in_channels, groups, type(self).__name__)
        super().__init__(in_channels, groups + coord_channels, last,
                         norm_cfg, act_cfg, init_cfg, text_channels,
                         coord_channels, coord_kernel, kernel_act_cfg)
        self.groups = groups
        self.text_fc = nn.Linear(text_channels, in_channels)
        self.kernel_act = (
            build_activation_layer(kernel_act_cfg)
            if kernel_act_cfg is not None else nn.Identity())

    def forward(self, x: Tensor, text: Tensor, coords: Tensor) -> Tensor:
        b, c, h, w = x.shape
        k = self.kernel_act(self.text_fc(text)).to(x.dtype)
        g = x * k.view(b, c, 1, 1)
        g = g.view(b, self.groups, c // self.groups, h, w).sum(2)
        return self._finish(x, g, coords, text)


class CMDyConvBlock(_ResidualOutput):
    r"""Context modulated dynamic convolution, eq. 9-12.

    ``k^T = act_T(FC(F_T))`` (B, C); ``k^V = act_V(Conv3x3(F))``
    (B, M * 9, H, W) with ``M = C`` (per channel, eq. 11) or ``G``;
    deformable: ``\Delta l = Conv3x3(F)`` (B, O * 18, H, W), zero-initialised;
    ``R = P([\sum_i \sum_l k^T k^V F(p + l + \Delta l), C])``.
    See :func:`cmdyseg.models.layers.cmdyconv` for the channel layouts.

    Args:
        in_channels, text_channels, groups, coord_channels, last: as in
            :class:`GroupDyConvBlock`.
        kv_per_group (bool): one ``k^V`` per group (M = G) instead of per
            channel (M = C, default, eq. 11).
        deformable (bool): predict offsets (DCMDyConv, eq. 12).
        offset_groups (int): O, 1 (one offset field for all channels) or
            ``groups`` (one per group).
        kt_act_cfg (dict | None): activation of ``k^T`` (default Tanh, as
            eq. 5).
        kv_act_cfg (dict | None): activation of ``k^V`` (default Sigmoid,
            the DCNv2 modulation convention).
        coord_kernel (bool): scale ``C`` by a text kernel (activation
            ``kt_act_cfg``) too (not in the paper; see
            :class:`_ResidualOutput`). Default False.
        backend (str): CMDyConv backend (see
            :func:`cmdyseg.models.layers.get_cmdyconv_backend`).
        norm_cfg, act_cfg (dict | None): of intermediate blocks.
        init_cfg: defaults to zero weights and bias of ``offset_conv`` (so
            a deformable block starts as the plain CMDyConv); applied after
            any ``init_cfg`` of the parent head and before pretrained
            weights are loaded.
    """

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 groups: int,
                 coord_channels: int,
                 last: bool,
                 kv_per_group: bool = False,
                 deformable: bool = False,
                 offset_groups: int = 1,
                 kt_act_cfg: Optional[dict] = dict(type='Tanh'),
                 kv_act_cfg: Optional[dict] = dict(type='Sigmoid'),
                 coord_kernel: bool = False,
                 backend: str = 'auto',
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg='default'):
        owner = type(self).__name__
        _check_groups(in_channels, groups, owner)
        if deformable and offset_groups not in (1, groups):
            raise ValueError(f'{owner}: offset_groups={offset_groups} must '
                             f'be 1 or groups={groups}')
        if init_cfg == 'default':
            init_cfg = (
                dict(
                    type='Constant',
                    val=0,
                    bias=0,
                    override=dict(name='offset_conv'))
                if deformable else None)
        super().__init__(in_channels, groups + coord_channels, last,
                         norm_cfg, act_cfg, init_cfg, text_channels,
                         coord_channels, coord_kernel, kt_act_cfg)
        self.groups = groups
        self.backend = backend
        self.text_fc = nn.Linear(text_channels, in_channels)
        self.kt_act = (
            build_activation_layer(kt_act_cfg)
            if kt_act_cfg is not None else nn.Identity())
        mask_groups = groups if kv_per_group else in_channels
        self.kv_conv = nn.Conv2d(
            in_channels, mask_groups * KERNEL_POINTS, 3, padding=1)
        self.kv_act = (
            build_activation_layer(kv_act_cfg)
            if kv_act_cfg is not None else nn.Identity())
        if deformable:
            self.offset_conv = nn.Conv2d(
                in_channels, offset_groups * 2 * KERNEL_POINTS, 3, padding=1)
            # zero even if init_weights() is never called
            nn.init.zeros_(self.offset_conv.weight)
            nn.init.zeros_(self.offset_conv.bias)
        else:
            self.offset_conv = None

    def forward(self, x: Tensor, text: Tensor, coords: Tensor) -> Tensor:
        kt = self.kt_act(self.text_fc(text))
        kv = self.kv_act(self.kv_conv(x))
        offset = self.offset_conv(x) if self.offset_conv is not None else None
        g = cmdyconv(x, kt, kv, offset, self.groups, backend=self.backend)
        return self._finish(x, g, coords, text)


class DyConvBlock(BaseModule):
    r"""Traditional dynamic 1x1 convolution (Gavrilyuk et al. 2018, eq. 5-6)
    over ``[F, C]`` (C + D_C channels).

    Last block: ``k = act(W_k F_T + b_k)`` (B, C + D_C), ``R = \sum_i k_i
    [F, C]_i`` (B, 1, H, W) (plus a learned scalar if ``bias``).
    Intermediate block: a full dynamic kernel (B, C, C + D_C) predicted the
    same way -- ``D_T * C * (C + D_C)`` weights, the cost that motivates
    the groupwise kernels of eq. 7 -- then norm, residual and activation.

    Args:
        in_channels, text_channels, coord_channels, last: as in
            :class:`GroupDyConvBlock`.
        kernel_act_cfg (dict | None): default Tanh (eq. 5).
        bias (bool): add a learned scalar to the last block's response
            (eq. 6 has none; default False).
        norm_cfg, act_cfg (dict | None): of intermediate blocks.
    """

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 coord_channels: int,
                 last: bool,
                 kernel_act_cfg: Optional[dict] = dict(type='Tanh'),
                 bias: bool = False,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.last = last
        self.in_channels = in_channels
        cin = in_channels + coord_channels
        out = 1 if last else in_channels
        self.text_fc = nn.Linear(text_channels, out * cin)
        self.kernel_act = (
            build_activation_layer(kernel_act_cfg)
            if kernel_act_cfg is not None else nn.Identity())
        self.bias = nn.Parameter(torch.zeros(1)) if (bias and last) else None
        with_norm = norm_cfg is not None and not last
        self.norm = (
            build_norm_layer(norm_cfg, in_channels)[1]
            if with_norm else nn.Identity())
        self.act = (
            build_activation_layer(act_cfg)
            if act_cfg is not None and not last else nn.Identity())

    def forward(self, x: Tensor, text: Tensor, coords: Tensor) -> Tensor:
        b = x.shape[0]
        feats = torch.cat([x, coords.to(x.dtype)], 1)  # (B, C + D_C, H, W)
        k = self.kernel_act(self.text_fc(text)).to(x.dtype)
        k = k.view(b, -1, feats.shape[1])  # (B, out, C + D_C)
        r = torch.einsum('boi,bihw->bohw', k, feats)
        if self.last:
            return r if self.bias is None else r + self.bias
        return self.act(x + self.norm(r))


class ResponseRefiner(BaseModule):
    """Refines a coarse response map at the visual features' resolution.

    Not in the paper: a finer decode for inputs so small that the response
    at the heads' working resolution cannot draw an actor's outline (the
    tiny 64 x 64 input). With the head's input ``F`` (B, C, H, W) and the
    response ``r`` (B, 1, H / s, W / s) of the blocks run on ``F``
    average-pooled by ``s``::

        u = Up_s(r)                                   (bilinear)
        k = tanh(FC(F_T))                             (B, C), per channel
        R = u + Conv3x3(act(Conv3x3([u, k * F])))     (B, 1, H, W)

    The text kernel ``k`` lets the refinement tell the referred actor's
    edge from a neighbour's; the last convolution starts at zero, so an
    untrained refiner returns ``u``.

    Args:
        in_channels (int): C.
        text_channels (int): D_T.
        channels (int): Hidden channels. Defaults to 16.
        align_corners (bool): Of the upsampling. Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 channels: int = 16,
                 align_corners: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(channels, int) or channels < 1:
            raise ValueError('ResponseRefiner: channels must be a positive '
                             f'int, got {channels!r}')
        self.align_corners = align_corners
        self.text_fc = nn.Linear(text_channels, in_channels)
        self.conv1 = nn.Conv2d(in_channels + 1, channels, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, 1, 3, padding=1)
        self._zero_last()

    def _zero_last(self):
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def init_weights(self):
        super().init_weights()
        # mmengine's init_cfg (e.g. Kaiming) must not undo the identity start
        self._zero_last()

    def forward(self, response: Tensor, visual: Tensor,
                text: Tensor) -> Tensor:
        up = F.interpolate(response, size=visual.shape[-2:], mode='bilinear',
                           align_corners=self.align_corners)
        k = torch.tanh(self.text_fc(text))[:, :, None, None]
        h = self.act(self.conv1(torch.cat([up, visual * k], 1)))
        return up + self.conv2(h)
