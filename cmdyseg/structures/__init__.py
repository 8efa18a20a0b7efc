# Copyright (c) cmdyseg contributors. All rights reserved.
from .refer_seg_data_sample import ReferSegDataSample

__all__ = ['ReferSegDataSample']
