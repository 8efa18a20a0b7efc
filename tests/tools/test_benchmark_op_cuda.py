# Copyright (c) cmdyseg contributors. All rights reserved.
"""The CUDA benchmark's correctness check, run on CPU: Triton in its
interpreter, and mmcv's modulated_deform_conv2d standing in for
torchvision's deform_conv2d (same conventions; torchvision does not import
beside this torch)."""
import os.path as osp

import pytest
import torch
from load_script import load_script

pytest.importorskip('triton')
ops_mmcv = pytest.importorskip('mmcv.ops')

SCRIPT = osp.join(
    osp.dirname(__file__), '..', '..', 'tools', 'analysis',
    'benchmark_op_cuda.py')


def _load_script():
    return load_script(SCRIPT, 'benchmark_op_cuda')


def _mmcv_deform_conv2d(input, offset, weight, padding, mask):
    groups = input.shape[1] // weight.shape[1]
    return ops_mmcv.modulated_deform_conv2d(input, offset, mask, weight,
                                            None, 1, padding, 1, groups,
                                            offset.shape[1] // 18)


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='on CUDA the script itself runs this check')
def test_cuda_benchmark_check_on_cpu():
    bench = _load_script()
    bench.DEFORM_CONV2D = _mmcv_deform_conv2d
    ops = bench.backends(bench._load('cmdyconv_triton'),
                         bench._load('cmdyconv_torch'))
    report = []
    ok = bench.check(ops, (2, 8, 2, 5), torch.float64, report,
                     device='cpu')
    assert ok, [r for r in report if not r['ok']]
    # every layout x (triton, triton-tiled, torch)
    assert len(report) == 3 * len(bench.LAYOUTS)


def test_cuda_benchmark_check_catches_a_wrong_backend():
    bench = _load_script()
    bench.DEFORM_CONV2D = _mmcv_deform_conv2d

    def wrong(x, kt, kv, offset, groups):  # ignores the offsets
        return bench.unfold_op(x, kt, kv, None, groups)

    ops = dict(torchvision=bench.torchvision_op, triton=wrong,
               **{'triton-tiled': wrong, 'torch': wrong})
    report = []
    assert not bench.check(ops, (1, 4, 2, 5), torch.float64, report,
                           device='cpu')
    bad = {(r['layout'], r['backend']) for r in report if not r['ok']}
    assert ('channel-off1', 'triton') in bad
    assert ('group-none', 'triton') not in bad
