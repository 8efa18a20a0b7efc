# Copyright (c) cmdyseg contributors. All rights reserved.
from .visualization_hook import (ReferSegVisualizationHook, centre_frame,
                                 sample_name)

__all__ = ['ReferSegVisualizationHook', 'centre_frame', 'sample_name']
