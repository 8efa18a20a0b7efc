# Copyright (c) cmdyseg contributors. All rights reserved.
from .action_seg_aux_head import ActionSegAuxHead
from .base_dyconv_head import BaseDyConvHead, response_to_mask
from .cmdyconv_head import CMDyConvHead, DCMDyConvHead
from .dyconv_blocks import CMDyConvBlock, DyConvBlock, GroupDyConvBlock
from .dyconv_head import DyConvHead
from .group_dyconv_head import GroupDyConvHead

__all__ = [
    'BaseDyConvHead', 'DyConvHead', 'GroupDyConvHead', 'CMDyConvHead',
    'DCMDyConvHead', 'DyConvBlock', 'GroupDyConvBlock', 'CMDyConvBlock',
    'response_to_mask', 'ActionSegAuxHead'
]
