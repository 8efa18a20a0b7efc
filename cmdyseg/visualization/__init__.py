# Copyright (c) cmdyseg contributors. All rights reserved.
from .draw import (CAPTION_MODES, PALETTE, caption_band_height, color_for,
                   draw_refer_overlay, draw_text_lines, overlay_mask)
from .refer_seg_visualizer import ReferSegVisualizer, imwrite_atomic

__all__ = [
    'CAPTION_MODES', 'PALETTE', 'ReferSegVisualizer', 'caption_band_height',
    'color_for', 'draw_refer_overlay', 'draw_text_lines', 'imwrite_atomic',
    'overlay_mask'
]
