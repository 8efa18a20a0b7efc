# Copyright (c) cmdyseg contributors. All rights reserved.
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.registry import DefaultScope

# Without a GPU, Triton kernels run in Triton's interpreter. Triton reads
# the switch when it is first imported, which any test may do first.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')

# Make the helper modules of tests/ importable: reference_ops.py (shared
# written-out oracles) and shared_data.py (the real annotation files kept
# outside the repository).
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


@pytest.fixture(autouse=True)
def _isolate_default_scope():
    """A Runner or register_all_modules in one test sets mmengine's global
    default scope; restore it so that tests do not depend on their order."""
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
