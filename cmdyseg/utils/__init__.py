# Copyright (c) cmdyseg contributors. All rights reserved.
from .collect_env import collect_env
from .compat import apply_compat_patches
from .setup_env import register_all_modules

__all__ = ['apply_compat_patches', 'collect_env', 'register_all_modules']
