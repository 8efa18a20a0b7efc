# Copyright (c) cmdyseg contributors. All rights reserved.
"""Shared skeleton of the dynamic-convolution heads (Table 3 rows)."""
import torch.nn as nn
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from ..layers import COORD_CHANNELS, coord_features


class BaseDyConvHead(BaseModule):
    """Stack of ``num_modules`` interaction blocks between visual features
    and a sentence vector; the last block emits the response map ``R^M``.

    ``forward(visual (B, C, H, W), text (B, D_T)) -> (B, 1, H, W)`` logits.
    Coordinate maps (B, D_C, H, W) (see
    :func:`cmdyseg.models.layers.coord_features`) are built for the input
    size and fed to every block. Intermediate blocks update the features
    with a residual connection, ``x <- act(x + norm(R(x)))``.

    Args:
        in_channels (int): C = D_M, channels of the visual features.
        text_channels (int): D_T, size of the sentence vector.
        groups (int): G, number of groups (C must be divisible by G).
        num_modules (int): number of stacked blocks (>= 1).
        coord_channels (int): D_C, 8 (Gavrilyuk et al.), 2 or 0.
        init_cfg (dict | list | None): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 groups: int = 64,
                 num_modules: int = 3,
                 coord_channels: int = 8,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        for arg, val in (('in_channels', in_channels),
                         ('text_channels', text_channels),
                         ('groups', groups), ('num_modules', num_modules)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f'{name}: {arg}={val!r} must be a positive '
                                 'int')
        if in_channels % groups:
            raise ValueError(f'{name}: groups={groups} must divide '
                             f'in_channels={in_channels}')
        if coord_channels not in COORD_CHANNELS:
            raise ValueError(f'{name}: coord_channels={coord_channels!r} '
                             f'must be one of {COORD_CHANNELS}')
        self.in_channels = in_channels
        self.text_channels = text_channels
        self.groups = groups
        self.num_modules = num_modules
        self.coord_channels = coord_channels

    def _build_blocks(self):
        # mmengine's ModuleList passes init_weights() on to the blocks
        self.blocks = ModuleList([
            self.build_block(last=(i == self.num_modules - 1))
            for i in range(self.num_modules)
        ])

    def build_block(self, last: bool) -> nn.Module:
        """One block: ``forward(x, text, coords)``; ``last`` blocks return
        (B, 1, H, W), the others (B, C, H, W)."""
        raise NotImplementedError

    def forward(self, visual: Tensor, text: Tensor) -> Tensor:
        """
        Args:
            visual (Tensor): (B, C, H, W) visual features F_V^M.
            text (Tensor): (B, D_T) sentence features F_T.

        Returns:
            Tensor: (B, 1, H, W) response map R^M (logits).
        """
        name = type(self).__name__
        if visual.dim() != 4 or visual.shape[1] != self.in_channels:
            raise ValueError(
                f'{name}: visual must be (B, {self.in_channels}, H, W), got '
                f'{tuple(visual.shape)}')
        if text.dim() != 2 or tuple(text.shape) != (visual.shape[0],
                                                    self.text_channels):
            raise ValueError(
                f'{name}: text must be (B, D_T) = '
                f'{(visual.shape[0], self.text_channels)}, got '
                f'{tuple(text.shape)}')
        b, _, h, w = visual.shape
        coords = coord_features(
            b,
            h,
            w,
            self.coord_channels,
            device=visual.device,
            dtype=visual.dtype)
        x = visual
        for block in self.blocks:
            x = block(x, text, coords)
        return x
