# Copyright (c) cmdyseg contributors. All rights reserved.
"""Fixtures: the layouts of :mod:`refer_data_fixtures` in ``tmp_path``."""
import os.path as osp
import sys

import pytest

# make tests/datasets/refer_data_fixtures.py importable by the test modules
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from refer_data_fixtures import build_a2d, build_jhmdb  # noqa: E402


@pytest.fixture
def a2d_root(tmp_path):
    return build_a2d(tmp_path / 'a2d')


@pytest.fixture
def jhmdb_root(tmp_path):
    return build_jhmdb(tmp_path / 'jhmdb')
