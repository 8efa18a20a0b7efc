# Copyright (c) cmdyseg contributors. All rights reserved.
"""Tests of tools/analysis/benchmark_op.py (one tiny run, no timing
assertions)."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'benchmark_op.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_op', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def test_parse_layout():
    assert tool.parse_layout('channel-off1', 4, 16) == (16, 1)
    assert tool.parse_layout('group-offG', 4, 16) == (4, 4)
    assert tool.parse_layout('group-none', 4, 16) == (4, 0)
    with pytest.raises(ValueError, match='bad layout'):
        tool.parse_layout('channel-off2', 4, 16)


def test_bytes_lower_bound_counts_every_tensor_once():
    tensors, groups = tool.make_inputs((2, 8, 2, 4), 'channel-off1', 'cpu',
                                       0)
    x, kt, kv, offset = tensors
    assert kv.shape == (2, 72, 4, 4) and offset.shape == (2, 18, 4, 4)
    ins = 4 * (x.numel() + kt.numel() + kv.numel() + offset.numel())
    out = 4 * 2 * 2 * 4 * 4
    fwd, total = tool.bytes_lower_bound(tensors, groups)
    assert fwd == ins + out
    assert total == fwd + out + 2 * ins


def test_unfold_baseline_matches_the_library_without_offsets():
    from cmdyseg.models.layers import cmdyconv
    tensors, groups = tool.make_inputs((2, 8, 2, 5), 'group-none', 'cpu', 1)
    x, kt, kv, _ = tensors
    torch.testing.assert_close(
        tool.unfold_baseline(x, kt, kv, None, groups),
        cmdyconv(x, kt, kv, None, groups, backend='torch-autograd'))


def test_main_writes_table_and_json(tmp_path):
    out, js = tmp_path / 'bench.md', tmp_path / 'bench.json'
    tool.main([
        '--shapes', 'tiny', '--layouts', 'channel-off1', '--backends',
        'torch', '--repeats', '1', '--no-memory', '--out',
        str(out), '--json',
        str(js)
    ])
    table = out.read_text()
    assert '| unfold (no offsets) |' in table and '| torch |' in table
    assert 'bytes-moved lower bound' in table
    raw = json.loads(js.read_text())
    assert [r['backend'] for r in raw] == ['unfold', 'torch']
    assert raw[0]['fwd_bwd_ratio'] == 1.0
    for rec in raw:
        assert rec['fwd_s'] > 0 and rec['fwd_bwd_s'] > 0
        assert rec['dims'] == [8, 64, 16, 16]
