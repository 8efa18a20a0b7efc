# Copyright (c) cmdyseg contributors. All rights reserved.
from .cmdy_segmentor import CMDySegmentor, response_to_mask, weighted_bce_loss
from .data_preprocessor import ReferSegDataPreprocessor

__all__ = [
    'CMDySegmentor', 'ReferSegDataPreprocessor', 'response_to_mask',
    'weighted_bce_loss'
]
