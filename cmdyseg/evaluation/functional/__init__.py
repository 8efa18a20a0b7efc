# Copyright (c) cmdyseg contributors. All rights reserved.
from .jf import (aggregate_jf, average_over_annotation_sets, bound_pixels,
                 boundary_f, boundary_precision_recall, disk, j_and_f, jaccard,
                 seg2bmap)

__all__ = [
    'jaccard', 'boundary_f', 'seg2bmap', 'disk', 'bound_pixels', 'j_and_f',
    'boundary_precision_recall',
    'aggregate_jf', 'average_over_annotation_sets'
]
