# Copyright (c) cmdyseg contributors. All rights reserved.
from .formatting import PackReferSegInputs
from .loading import LoadA2DInstanceMask, LoadJHMDBPuppetMask, SampleReferClip
from .processing import FLIP_WORD_PAIRS, ReferFlip, ResizeMask, swap_left_right

__all__ = [
    'SampleReferClip', 'LoadA2DInstanceMask', 'LoadJHMDBPuppetMask',
    'ResizeMask', 'ReferFlip', 'swap_left_right', 'FLIP_WORD_PAIRS',
    'PackReferSegInputs'
]
