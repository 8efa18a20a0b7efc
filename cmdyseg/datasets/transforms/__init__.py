# Copyright (c) cmdyseg contributors. All rights reserved.
from .formatting import PackReferSegInputs, PackReferVideoInputs
from .loading import (CachedOpenCVDecode, CachedOpenCVInit, LoadA2DActionMap,
                      LoadA2DInstanceMask, LoadJHMDBPuppetMask,
                      SampleReferClip, SampleVideoWindows, clip_indices)
from .processing import FLIP_WORD_PAIRS, ReferFlip, ResizeMask, swap_left_right
from .rvos_loading import (LoadListedFrames, LoadReferObjectMask,
                           LoadVideoObjectMasks, expression_gt)

__all__ = [
    'SampleReferClip', 'LoadA2DInstanceMask', 'LoadA2DActionMap',
    'LoadJHMDBPuppetMask',
    'ResizeMask', 'ReferFlip', 'swap_left_right', 'FLIP_WORD_PAIRS',
    'PackReferSegInputs', 'PackReferVideoInputs', 'SampleVideoWindows',
    'clip_indices', 'CachedOpenCVInit', 'CachedOpenCVDecode'
]

__all__ += [
    'LoadListedFrames', 'LoadReferObjectMask', 'LoadVideoObjectMasks',
    'expression_gt'
]
