# Copyright (c) cmdyseg contributors. All rights reserved.
import datetime
import importlib
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every cmdyseg module that registers into a registry.

    Args:
        init_default_scope (bool): Also make ``cmdyseg`` the default scope,
            so that configs without a scope prefix resolve to cmdyseg's
            registry nodes first. Defaults to True.
    """
    from cmdyseg.registry import LOCATIONS
    for modules in LOCATIONS.values():
        for module in modules:
            importlib.import_module(module)

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or not DefaultScope.check_instance_created('cmdyseg'):
        DefaultScope.get_instance('cmdyseg', scope_name='cmdyseg')
    elif current.scope_name != 'cmdyseg':
        warnings.warn(f'The current default scope "{current.scope_name}" is '
                      'not "cmdyseg"; register_all_modules switches it to '
                      '"cmdyseg". Pass init_default_scope=False to keep it.')
        DefaultScope.get_instance(
            f'cmdyseg-{datetime.datetime.now()}', scope_name='cmdyseg')
