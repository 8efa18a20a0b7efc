# Copyright (c) cmdyseg contributors. All rights reserved.
from .cmdyconv import (AUTO_PRIORITY, available_cmdyconv_backends, cmdyconv,
                       get_cmdyconv_backend, register_cmdyconv_backend)
from .cmdyconv_torch import KERNEL_POINTS, KERNEL_SIZE
from .coord import COORD_CHANNELS, coord_features

__all__ = [
    'cmdyconv', 'get_cmdyconv_backend', 'register_cmdyconv_backend',
    'available_cmdyconv_backends', 'AUTO_PRIORITY', 'coord_features',
    'COORD_CHANNELS', 'KERNEL_SIZE', 'KERNEL_POINTS'
]
