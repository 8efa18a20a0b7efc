# Copyright (c) cmdyseg contributors. All rights reserved.
from .jf_metric import JFMetric
from .refer_seg_metric import ReferSegMetric
from .rvos_submission import DumpVideoResults, ReferVOSSubmission

__all__ = ['ReferSegMetric', 'JFMetric', 'ReferVOSSubmission',
           'DumpVideoResults']
