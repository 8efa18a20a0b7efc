# Copyright (c) cmdyseg contributors. All rights reserved.
"""Spatial coordinate feature maps (the ``C`` of eq. 8).

Following Gavrilyuk et al. (2018), who take them from Hu et al. (2016), each
cell ``(h, w)`` of an ``H x W`` map covers the box
``[w / W, (w + 1) / W] x [h / H, (h + 1) / H]`` of the image, rescaled to
``[-1, 1]``. The 8 channels, in this order, are::

    0 x_min     = 2 * w / W - 1
    1 x_center  = 2 * (w + 0.5) / W - 1
    2 x_max     = 2 * (w + 1) / W - 1
    3 y_min     = 2 * h / H - 1
    4 y_center  = 2 * (h + 0.5) / H - 1
    5 y_max     = 2 * (h + 1) / H - 1
    6 1 / W     (constant, the cell width in the original papers' units)
    7 1 / H     (constant)

``num_channels=2`` gives only ``(x_center, y_center)``; ``0`` gives an empty
map (coordinates switched off).
"""
from typing import Optional

import torch
from torch import Tensor

COORD_CHANNELS = (0, 2, 8)


def coord_features(batch: int,
                   height: int,
                   width: int,
                   num_channels: int = 8,
                   device: Optional[torch.device] = None,
                   dtype: torch.dtype = torch.float32) -> Tensor:
    """Coordinate feature maps.

    Args:
        batch (int): ``B``.
        height (int): ``H``.
        width (int): ``W``.
        num_channels (int): 8 (the full set above), 2 (centres) or 0.
        device, dtype: of the result.

    Returns:
        Tensor: (B, num_channels, H, W); the same map for every sample.
    """
    if num_channels not in COORD_CHANNELS:
        raise ValueError(f'coord_features: num_channels={num_channels!r} '
                         f'must be one of {COORD_CHANNELS}')
    if height < 1 or width < 1:
        raise ValueError(f'coord_features: height={height}, width={width} '
                         'must be positive')
    if num_channels == 0:
        return torch.zeros(batch, 0, height, width, device=device,
                           dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    ys = torch.arange(height, device=device, dtype=dtype)
    x_min = (2 * xs / width - 1).view(1, width).expand(height, width)
    x_max = (2 * (xs + 1) / width - 1).view(1, width).expand(height, width)
    y_min = (2 * ys / height - 1).view(height, 1).expand(height, width)
    y_max = (2 * (ys + 1) / height - 1).view(height, 1).expand(height, width)
    x_ctr = (x_min + x_max) / 2
    y_ctr = (y_min + y_max) / 2
    if num_channels == 2:
        maps = [x_ctr, y_ctr]
    else:
        ones = x_min.new_ones(height, width)
        maps = [
            x_min, x_ctr, x_max, y_min, y_ctr, y_max, ones / width,
            ones / height
        ]
    coords = torch.stack(maps, 0)
    return coords.unsqueeze(0).expand(batch, -1, -1, -1).contiguous()
