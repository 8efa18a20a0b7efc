# Copyright (c) cmdyseg contributors. All rights reserved.
from .hooks import ReferSegVisualizationHook
from .runner import ReferVideoTestLoop, encode_masks, expression_records

__all__ = [
    'ReferSegVisualizationHook', 'ReferVideoTestLoop', 'encode_masks',
    'expression_records'
]
