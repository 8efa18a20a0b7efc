# Copyright (c) cmdyseg contributors. All rights reserved.
from typing import Optional

from cmdyseg.registry import MODELS
from .base_dyconv_head import BaseDyConvHead
from .dyconv_blocks import DyConvBlock


@MODELS.register_module()
class DyConvHead(BaseDyConvHead):
    r"""Baseline dynamic convolution (Gavrilyuk et al. 2018; Table 3
    "Baseline (DyConv)"), eq. 5-6.

    ``k = tanh(W_k F_T + b_k)`` with one weight per channel of ``[F, C]``
    (C + D_C channels); ``R^M = \sum_i k_i [F, C]_i`` -- a 1x1 dynamic
    convolution to one channel.

    ``num_modules`` defaults to 1 here: the baseline is a single dynamic
    filter, and the paper introduces stacking with its own modules. With
    ``num_modules > 1`` every block but the last predicts a full dynamic
    1x1 kernel (C + D_C -> C, ``D_T * C * (C + D_C)`` weights in the text
    FC -- 40M for the paper's sizes) followed by norm, residual and
    activation. ``groups`` is accepted for a uniform interface, unused and
    not checked.

    ``forward(visual (B, C, H, W), text (B, D_T)) -> (B, 1, H, W)`` logits.

    Args:
        in_channels (int): C = D_M.
        text_channels (int): D_T.
        groups (int): unused (kept for a uniform interface; any positive
            int).
        num_modules (int): stacked blocks, default 1.
        coord_channels (int): D_C, 8 / 2 / 0.
        kernel_act_cfg (dict | None): activation of k (default Tanh).
        bias (bool): learned scalar added to R^M (default False, eq. 6).
        norm_cfg (dict | None): norm of intermediate blocks (default BN).
        act_cfg (dict | None): activation after each residual (default ReLU).
        init_cfg (dict | list | None): mmengine initialisation config.
        **kwargs: the loss / prediction arguments of
            :class:`BaseDyConvHead` (``loss_decode``, ``align_corners``,
            ``ignore_index``, ``in_index``).
    """

    uses_groups = False

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 groups: int = 64,
                 num_modules: int = 1,
                 coord_channels: int = 8,
                 kernel_act_cfg: Optional[dict] = dict(type='Tanh'),
                 bias: bool = False,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg=None,
                 **kwargs):
        super().__init__(in_channels, text_channels, groups, num_modules,
                         coord_channels, init_cfg=init_cfg, **kwargs)
        self.kernel_act_cfg = kernel_act_cfg
        self.bias = bias
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self._build_blocks()

    def build_block(self, last: bool) -> DyConvBlock:
        return DyConvBlock(
            self.in_channels,
            self.text_channels,
            self.coord_channels,
            last,
            kernel_act_cfg=self.kernel_act_cfg,
            bias=self.bias,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
