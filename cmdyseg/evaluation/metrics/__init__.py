# Copyright (c) cmdyseg contributors. All rights reserved.
from .jf_metric import JFMetric
from .refer_seg_metric import ReferSegMetric

__all__ = ['ReferSegMetric', 'JFMetric']
