# Copyright (c) cmdyseg contributors. All rights reserved.
import os.path as osp
import sys

import pytest
from mmengine.registry import DefaultScope

# Make tests/reference_ops.py (shared written-out oracles) importable.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


@pytest.fixture(autouse=True)
def _isolate_default_scope():
    """A Runner or register_all_modules in one test sets mmengine's global
    default scope; restore it so that tests do not depend on their order."""
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
