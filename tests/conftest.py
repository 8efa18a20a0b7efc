# Copyright (c) cmdyseg contributors. All rights reserved.
import os.path as osp
import sys

# Make tests/reference_ops.py (shared written-out oracles) importable.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
