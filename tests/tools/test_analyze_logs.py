# Copyright (c) cmdyseg contributors. All rights reserved.
"""Tests of tools/analysis/analyze_logs.py on hand-written mmengine scalar
logs (the log of a real run is tested in test_train_test.py)."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
from load_script import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'analysis', 'analyze_logs.py')

analyze_logs = load_script(SCRIPT, 'cmdyseg_analyze_logs')

# 2 epochs x 3 logged iterations, validation after each epoch (step =
# epoch), as mmengine's LogProcessor writes them with by_epoch=True.
TIMES = [5.0, 1.0, 1.2, 0.9, 1.1, 1.3]
LOSSES = [0.7, 0.6, 0.5, 0.45, 0.4, 0.35]
MIOU = {1: 20.5, 2: 31.25}


def _records():
    records = []
    for i, (t, loss) in enumerate(zip(TIMES, LOSSES), 1):
        epoch = 1 + (i - 1) // 3
        records.append(
            dict(lr=1e-3, data_time=0.01, loss=loss, loss_mask=loss, time=t,
                 epoch=epoch, iter=i, step=i))
        if i % 3 == 0:
            records.append({
                'refer_seg/mIoU': MIOU[epoch],
                'refer_seg/coco/AP_m': float('nan'),
                'data_time': 0.01,
                'time': 0.2,
                'step': epoch
            })
    return records


def _write_work_dir(root, run='20240101_120000', records=None):
    vis = osp.join(root, run, 'vis_data')
    os.makedirs(vis)
    path = osp.join(vis, f'{run}.json')
    with open(path, 'w') as f:
        for r in records if records is not None else _records():
            f.write(json.dumps(r) + '\n')
    return path


def test_plot_curve_points_and_png(tmp_path):
    work = str(tmp_path / 'work')
    _write_work_dir(work, '20240101_120000', _records()[:2])  # older run
    newest = _write_work_dir(work, '20240102_120000')
    out = str(tmp_path / 'figs' / 'curves.png')
    curves = analyze_logs.plot_curve(
        [work, newest], ['loss_mask', 'refer_seg/mIoU', 'refer_seg/coco/AP_m'],
        out, legend=['dir', 'file'])
    assert list(curves) == ['dir', 'file']
    # the work dir resolved to its newest run, the same as the file
    assert curves['dir'] == curves['file']
    xs, ys = curves['dir']['loss_mask']
    assert xs == [1, 2, 3, 4, 5, 6] and ys == LOSSES
    # validation of epoch e sits at the last iteration of epoch e
    assert curves['dir']['refer_seg/mIoU'] == ([3, 6], [MIOU[1], MIOU[2]])
    assert np.isnan(curves['dir']['refer_seg/coco/AP_m'][1]).all()

    import matplotlib.image as mpimg
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > img.shape[1] > 100
    # written atomically: no temporary file left beside it
    assert os.listdir(osp.dirname(out)) == ['curves.png']


def test_plot_curve_command_line(tmp_path):
    log = _write_work_dir(str(tmp_path / 'work'))
    out = str(tmp_path / 'c.svg')
    proc = subprocess.run(
        [sys.executable, SCRIPT, 'plot_curve', log, '--keys', 'loss',
         '--title', 'tiny', '--out', out],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'wrote' in proc.stdout and '6 points' in proc.stdout
    with open(out) as f:
        assert '<svg' in f.read(2000)


def test_iteration_based_log(tmp_path):
    """Without epochs the validation step is the iteration."""
    records = [dict(loss=1.0, time=1.0, iter=i, step=i) for i in (10, 20)]
    records.append({'refer_seg/mIoU': 40.0, 'step': 20})
    log = _write_work_dir(str(tmp_path), records=records)
    curves = analyze_logs.plot_curve([log], ['refer_seg/mIoU'],
                                     str(tmp_path / 'c.png'))
    assert curves[log]['refer_seg/mIoU'] == ([20], [40.0])


def test_cal_train_time(tmp_path, capsys):
    log = _write_work_dir(str(tmp_path))
    res = analyze_logs.cal_train_time(log)
    # the first line of each epoch is left out: epoch 1 -> (1.0 + 1.2) / 2
    assert res['epochs'] == {
        1: pytest.approx(1.1),
        2: pytest.approx(1.2)
    }
    assert res['slowest_epoch'] == 2 and res['fastest_epoch'] == 1
    assert res['std_over_epochs'] == pytest.approx(0.05)
    assert res['average_iter_time'] == pytest.approx(
        (1.0 + 1.2 + 1.1 + 1.3) / 4)
    assert res['iters'] == 6
    res = analyze_logs.cal_train_time(log, include_outliers=True)
    assert res['epochs'][1] == pytest.approx((5.0 + 1.0 + 1.2) / 3)
    assert res['slowest_epoch'] == 1

    analyze_logs.main(['cal_train_time', log])
    out = capsys.readouterr().out
    assert log in out
    assert 'slowest epoch 2, average time is 1.2000 s/iter' in out
    assert 'average iter time: 1.1500 s/iter' in out


@pytest.mark.parametrize('content,message', [
    ('{"loss": 1.0, "iter": 1}\n{"loss": 0.9, "iter"\n',
     r'line 2: not JSON'),
    ('[1, 2]\n', r'line 1: expected a JSON object, got list'),
    ('{"loss": 1.0}\n', r'line 1: neither "iter".*nor "step"'),
    ('{"loss": 1.0, "iter": "one"}\n', r'"iter" must be an integer'),
    ('\n\n', r'holds no log records'),
])
def test_malformed_logs_name_the_file(tmp_path, content, message):
    log = str(tmp_path / 'bad.json')
    with open(log, 'w') as f:
        f.write(content)
    for task in (['plot_curve', log, '--out', str(tmp_path / 'c.png')],
                 ['cal_train_time', log]):
        with pytest.raises(SystemExit) as info:
            analyze_logs.main(task)
        text = str(info.value.code)
        assert text.startswith('analyze_logs: error:')
        assert log in text
        assert re.search(message, text), text
    assert not (tmp_path / 'c.png').exists()


def test_missing_logs_and_keys(tmp_path):
    missing = str(tmp_path / 'nope.json')
    with pytest.raises(SystemExit, match='log not found: .*nope.json'):
        analyze_logs.main(['cal_train_time', missing])
    empty_dir = tmp_path / 'empty_work_dir'
    empty_dir.mkdir()
    with pytest.raises(SystemExit, match='no mmengine log in .*empty_work'):
        analyze_logs.main(['cal_train_time', str(empty_dir)])

    log = _write_work_dir(str(tmp_path / 'work'))
    with pytest.raises(SystemExit, match=r"has no 'refer_seg/oIoU'; its "
                       r"keys are \['lr', .*'refer_seg/mIoU'"):
        analyze_logs.main(['plot_curve', log, '--keys', 'refer_seg/oIoU',
                           '--out', str(tmp_path / 'c.png')])
    with pytest.raises(SystemExit, match='--legend has 2 labels for 1 logs'):
        analyze_logs.main(['plot_curve', log, '--legend', 'a', 'b', '--out',
                           str(tmp_path / 'c.png')])
    with pytest.raises(SystemExit, match='image extension'):
        analyze_logs.main(['plot_curve', log, '--out', str(tmp_path / 'c')])
    # a validation-only log (a test run) has no training times
    val_only = _write_work_dir(
        str(tmp_path / 'test_run'),
        records=[r for r in _records() if 'iter' not in r])
    with pytest.raises(SystemExit, match='no training lines with "time"'):
        analyze_logs.main(['cal_train_time', val_only])
