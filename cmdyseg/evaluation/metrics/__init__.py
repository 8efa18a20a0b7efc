# Copyright (c) cmdyseg contributors. All rights reserved.
from .refer_seg_metric import ReferSegMetric

__all__ = ['ReferSegMetric']
