# Copyright (c) cmdyseg contributors. All rights reserved.
"""Tests of tools/analysis/benchmark_op.py (one tiny run, no timing
assertions)."""
import json
import os.path as osp

import pytest
import torch
from load_script import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'benchmark_op.py')


def _load_tool():
    return load_script(TOOL, 'benchmark_op')


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


def test_cuda_script_and_its_writer_load_without_mmengine(tmp_path):
    """benchmark_op_cuda.py runs on GPU machines with only torch, triton
    and torchvision: loading it (and benchmark_op.py, and the atomic
    writer it saves its JSON with) imports neither cmdyseg nor mmengine."""
    import subprocess
    import sys
    import textwrap
    script = osp.join(ROOT, 'tools', 'analysis', 'benchmark_op_cuda.py')
    code = textwrap.dedent(f'''
        import importlib.util, sys
        for name in ('cmdyseg', 'mmengine', 'mmcv', 'mmaction'):
            sys.modules[name] = None  # importing them raises
        spec = importlib.util.spec_from_file_location('bench', {script!r})
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        with bench._CPU.load_atomic().atomic_write(sys.argv[1], 'w') as f:
            f.write('ok')
    ''')
    out = tmp_path / 'results.json'
    subprocess.run([sys.executable, '-c', code, str(out)], check=True)
    assert out.read_text() == 'ok'
