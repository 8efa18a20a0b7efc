# Copyright (c) cmdyseg contributors. All rights reserved.
"""cmdyseg: actor and action video segmentation from a sentence.

Importing the package applies the few compatibility fixes that the pinned
OpenMMLab stack needs (see :mod:`cmdyseg.utils.compat`) before any of
mmaction2's models or mmengine's checkpoint loader is used.
"""
from .utils.compat import apply_compat_patches
from .version import __version__, version_info

apply_compat_patches()

__all__ = ['__version__', 'version_info']
