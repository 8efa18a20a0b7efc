# Copyright (c) cmdyseg contributors. All rights reserved.
"""Smoke run of tools/analysis/benchmark_inference.py at the tiny shape
(structure of the results only: timings are not asserted)."""
import json
import os.path as osp

import pytest
from load_script import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis', 'benchmark_inference.py')
TINY = osp.join(REPO, 'configs', 'cmdyconv',
                'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')


@pytest.fixture(scope='module')
def tool():
    return load_script(TOOL, 'cmdyseg_benchmark_inference')


def test_smoke_run_writes_every_combination(tool, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    results = tool.main([
        TINY, '--frames', '9', '--size', '48', '64', '--threads', '1',
        '--sentences', '1', '2', '--window-stride', '1', '4',
        '--interpolate', 'features', 'responses', 'deep', '--json',
        str(out)
    ])
    printed = capsys.readouterr().out
    assert '| threads | sentences | window stride | interpolate |' in printed
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    runs = results['runs']
    # the exact mode once per setting, the fast mode with each interpolation
    assert [(r['sentences'], r['window_stride'], r['interpolate'])
            for r in runs] == [(1, 1, '-'), (1, 4, 'features'),
                               (1, 4, 'responses'), (1, 4, 'deep'),
                               (2, 1, '-'), (2, 4, 'features'),
                               (2, 4, 'responses'), (2, 4, 'deep')]
    for r in runs:
        assert r['frames'] == 9
        assert set(r['seconds']) == set(tool.STAGES)
        assert all(v >= 0 for v in r['seconds'].values())
        assert r['fps'] > 0 and r['model_fps'] >= r['fps']
        # the fast mode is compared with the exact run of the same setting
        assert ('mask_iou_vs_exact' in r) == (r['window_stride'] > 1)
        if 'mask_iou_vs_exact' in r:
            assert 0.0 <= r['mask_iou_vs_exact'] <= 1.0
    assert results['machine']['cpu']


@pytest.mark.parametrize('argv,message', [
    (['--frames', '0'], '--frames must be >= 1'),
    (['--window-stride', '1', '0'], '--window-stride values must be >= 1'),
    (['--sentences', '9'], '--sentences: at most'),
])
def test_bad_arguments_are_one_line(tool, argv, message, capsys):
    from cmdyseg.utils.cli import run_cli
    status = run_cli(tool.main, [TINY] + argv, prog='benchmark_inference.py',
                     exit=False)
    err = capsys.readouterr().err
    assert status == 1
    assert message in err and len(err.strip().splitlines()) == 1


def test_shared_frames_rows_on_the_main_jobs_model(tool, capsys):
    """--share-frames on off on the main job's model (2-D encoder): both
    rows of each mode, the exact one with sharing off compared with the
    first (sharing is exact: the same masks), the backbone timed in both
    (forward_windows is not a module call)."""
    main_job = load_script(osp.join(REPO, 'tools', 'main_job.py'))
    results = tool.main([
        osp.join(REPO, main_job.CONFIG), '--frames', '11', '--size', '48',
        '64', '--threads', '1', '--sentences', '1', '--window-stride', '1',
        '2', '--interpolate', 'deep', '--share-frames', 'on', 'off'
    ])
    assert '| share frames |' in capsys.readouterr().out
    runs = results['runs']
    assert [(r['window_stride'], r['share_frames']) for r in runs] == [
        (1, 'on'), (1, 'off'), (2, 'on'), (2, 'off')]
    assert 'mask_iou_vs_exact' not in runs[0]
    assert runs[1]['mask_iou_vs_exact'] >= 0.999  # float sums aside
    for r in runs:
        assert r['seconds']['backbone'] > 0
