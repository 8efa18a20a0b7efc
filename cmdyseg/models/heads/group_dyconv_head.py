# Copyright (c) cmdyseg contributors. All rights reserved.
from typing import Optional

from cmdyseg.registry import MODELS
from .base_dyconv_head import BaseDyConvHead
from .dyconv_blocks import GroupDyConvBlock


@MODELS.register_module()
class GroupDyConvHead(BaseDyConvHead):
    r"""Groupwise dynamic convolution ("Our DyConv", Table 3), eq. 7-8.

    Each block: ``k = tanh(W_k F_T + b_k)`` (B, C);
    ``G(k, F)_j = \sum_{i<N} k_{i,j} F_{i,j}`` (B, G, H, W);
    ``R = P([G(k, F), C])`` with ``P`` a 1x1 conv to C channels and a
    residual connection (``x <- act(x + norm(R))``); the last block's ``P``
    emits the 1-channel response map.

    ``forward(visual (B, C, H, W), text (B, D_T)) -> (B, 1, H, W)`` logits.

    Args:
        in_channels (int): C = D_M = N * G.
        text_channels (int): D_T.
        groups (int): G (default 64).
        num_modules (int): stacked blocks (default 3).
        coord_channels (int): D_C, 8 / 2 / 0.
        kernel_act_cfg (dict | None): activation of k (default Tanh).
        coord_kernel (bool): scale the coordinate maps by a text kernel
            before ``P`` (not in the paper; see :class:`CMDyConvHead`).
            Default False.
        norm_cfg (dict | None): norm of intermediate blocks (default BN).
        act_cfg (dict | None): activation after each residual (default ReLU).
        init_cfg (dict | list | None): mmengine initialisation config.
        **kwargs: the loss / prediction arguments of
            :class:`BaseDyConvHead` (``loss_decode``, ``align_corners``,
            ``ignore_index``, ``in_index``).
    """

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 groups: int = 64,
                 num_modules: int = 3,
                 coord_channels: int = 8,
                 kernel_act_cfg: Optional[dict] = dict(type='Tanh'),
                 coord_kernel: bool = False,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg=None,
                 **kwargs):
        super().__init__(in_channels, text_channels, groups, num_modules,
                         coord_channels, init_cfg=init_cfg, **kwargs)
        self.kernel_act_cfg = kernel_act_cfg
        self.coord_kernel = coord_kernel
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self._build_blocks()

    def build_block(self, last: bool) -> GroupDyConvBlock:
        return GroupDyConvBlock(
            self.in_channels,
            self.text_channels,
            self.groups,
            self.coord_channels,
            last,
            kernel_act_cfg=self.kernel_act_cfg,
            coord_kernel=self.coord_kernel,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
