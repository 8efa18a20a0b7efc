# Copyright (c) cmdyseg contributors. All rights reserved.
"""Import a script that is not in a package (tools/, demo/, docs/examples/)
as a module, for the tests that call its functions directly."""
import importlib.util
import os.path as osp
from types import ModuleType
from typing import Optional


def load_script(path: str, name: Optional[str] = None) -> ModuleType:
    """Execute ``path`` as a fresh module named ``name`` (default: the file
    name without ``.py``) and return it."""
    name = name or osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
