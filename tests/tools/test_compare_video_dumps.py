# Copyright (c) cmdyseg contributors. All rights reserved.
"""tools/analysis/compare_video_dumps.py: per-frame mask IoU of two
video-level dumps, on dumps written here with known overlaps."""
import json
import os.path as osp
import pickle

import numpy as np
import pytest
from load_script import load_script

from cmdyseg.engine.runner.video_test_loop import encode_masks

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
tool = load_script(
    osp.join(ROOT, 'tools', 'analysis', 'compare_video_dumps.py'),
    'cmdyseg_tools_compare_video_dumps')


def _masks(boxes, shape=(10, 12)):
    """(T, H, W) uint8 masks, one box (y0, y1, x0, x1) or None per frame."""
    out = np.zeros((len(boxes), ) + shape, np.uint8)
    for t, box in enumerate(boxes):
        if box is not None:
            y0, y1, x0, x1 = box
            out[t, y0:y1, x0:x1] = 1
    return out


def _dump(path, exps):
    records = [
        dict(video_id=v, exp_id=e, sentence='s', pred_masks=encode_masks(m))
        for (v, e), m in exps.items()
    ]
    with open(path, 'wb') as f:
        pickle.dump(records, f)
    return str(path)


def test_frame_ious_by_hand(tmp_path, capsys):
    ref = {
        ('v1', '0'): _masks([(0, 4, 0, 4), (0, 4, 0, 4), None]),
        ('v2', '1'): _masks([(2, 6, 2, 6)]),
    }
    fast = {
        # identical / half the box (IoU 8/16) / both empty -> 1
        ('v1', '0'): _masks([(0, 4, 0, 4), (0, 4, 0, 2), None]),
        # disjoint: 0
        ('v2', '1'): _masks([(7, 9, 8, 10)]),
    }
    a = _dump(tmp_path / 'exact.pkl', ref)
    b = _dump(tmp_path / 'fast.pkl', fast)
    out = tmp_path / 'cmp.json'
    rows = tool.main([a, b, a, '--json', str(out)])
    ious = np.array([1.0, 0.5, 1.0, 0.0])
    assert rows[0]['frames'] == 4 and rows[0]['expressions'] == 2
    assert rows[0]['mean_iou'] == pytest.approx(ious.mean())
    assert rows[0]['median_iou'] == pytest.approx(np.median(ious))
    assert rows[0]['frames_iou_ge_0_9'] == pytest.approx(0.5)
    # the reference against itself
    assert rows[1]['mean_iou'] == 1.0
    assert json.loads(out.read_text())['runs'] == rows
    printed = capsys.readouterr().out
    assert f'| {b} | 2 | 4 | 0.625 | 0.750 | 50.0% |' in printed


def test_mismatched_dumps_are_one_line(tmp_path, capsys):
    from cmdyseg.utils.cli import run_cli
    a = _dump(tmp_path / 'a.pkl', {('v', '0'): _masks([None, None])})
    b = _dump(tmp_path / 'b.pkl', {('w', '0'): _masks([None, None])})
    c = _dump(tmp_path / 'c.pkl', {('v', '0'): _masks([None])})
    bad = tmp_path / 'bad.pkl'
    with open(bad, 'wb') as f:
        pickle.dump({'not': 'records'}, f)
    for argv, message in (
        ([a, b], 'its expressions are not those of'),
        ([a, c], 'has 1 frames, 2 in'),
        ([a, str(bad)], 'not a video-level dump'),
        ([a, str(tmp_path / 'none.pkl')], 'no such file'),
    ):
        status = run_cli(tool.main, argv, prog='compare_video_dumps.py',
                         exit=False)
        err = capsys.readouterr().err
        assert status == 1, argv
        assert message in err and len(err.strip().splitlines()) == 1, err
