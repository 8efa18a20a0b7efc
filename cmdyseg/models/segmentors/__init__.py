# Copyright (c) cmdyseg contributors. All rights reserved.
from .cmdy_segmentor import CMDySegmentor
from .data_preprocessor import ReferSegDataPreprocessor

__all__ = ['CMDySegmentor', 'ReferSegDataPreprocessor']
