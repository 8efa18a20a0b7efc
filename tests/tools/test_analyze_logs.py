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


# ------------------------------------------------ work dirs of several runs
def _train_line(it, epoch, loss, t=1.0):
    return dict(lr=1e-3, data_time=0.01, loss=loss, loss_mask=loss, time=t,
                epoch=epoch, iter=it, step=it)


def _text_log(root, run, lines):
    with open(osp.join(root, run, f'{run}.log'), 'w') as f:
        for line in lines:
            f.write(f'12/01 22:13:39 - mmengine - INFO - {line}\n')


def _test_run(root, run):
    """What tools/test.py leaves in a work dir: a text log, the metrics
    dumped beside it and a vis_data folder without a scalar log."""
    os.makedirs(osp.join(root, run, 'vis_data'))
    with open(osp.join(root, run, 'vis_data', 'config.py'), 'w') as f:
        f.write('model = dict()\n')
    with open(osp.join(root, run, f'{run}.json'), 'w') as f:
        f.write(json.dumps({'refer_seg/mIoU': 33.0}) + '\n')
    _text_log(root, run, ['Epoch(test) [1/1]  refer_seg/mIoU: 33.0'])


def test_work_dir_means_its_training_run_not_a_later_test_run(tmp_path):
    work = str(tmp_path / 'work')
    train_log = _write_work_dir(work, '20240101_120000')
    _text_log(work, '20240101_120000', ['Epoch(train) [1][1/3]'])
    _test_run(work, '20240102_120000')
    # a newer run whose scalar log has validation lines only
    _write_work_dir(work, '20240103_120000',
                    [r for r in _records() if 'iter' not in r])
    assert analyze_logs.find_json_log(work) == train_log
    curves = analyze_logs.plot_curve([work], ['loss'],
                                     str(tmp_path / 'c.png'))
    assert curves[work]['loss'] == ([1, 2, 3, 4, 5, 6], LOSSES)
    res = analyze_logs.cal_train_time(work)
    assert res['log'] == train_log and res['iters'] == 6
    # the test run alone is still named when asked for
    with pytest.raises(SystemExit, match='no scalar log in .*20240102_'):
        analyze_logs.main(['cal_train_time',
                           osp.join(work, '20240102_120000')])
    only_test = str(tmp_path / 'only_test')
    _test_run(only_test, '20240102_120000')
    with pytest.raises(SystemExit, match=r'no scalar log in any run of '
                       r'.*only_test \(runs: \[.20240102_120000.\]\)'):
        analyze_logs.main(['cal_train_time', only_test])


def _resumed_work_dir(work, text_logs=True):
    """run 0: an unrelated older run; run 1: iterations 10, 20 (epoch 1),
    30 (epoch 2), then stopped; run 2: resumed from run 1's epoch_1
    checkpoint (iteration 20), iterations 30, 40 (epoch 2); then a test
    run."""
    _write_work_dir(work, '20240101_000000',
                    [_train_line(i, 1, 9.0) for i in (10, 20)])
    _write_work_dir(work, '20240102_000000', [
        _train_line(10, 1, 0.9, 5.0), _train_line(20, 1, 0.8, 1.0),
        {'refer_seg/mIoU': 10.0, 'step': 1}, _train_line(30, 2, 0.75, 3.0)
    ])
    newest = _write_work_dir(work, '20240103_000000', [
        _train_line(30, 2, 0.7, 2.0), _train_line(40, 2, 0.6, 2.0),
        {'refer_seg/mIoU': 20.0, 'step': 2}
    ])
    if text_logs:
        _text_log(work, '20240101_000000', ['Epoch(train) [1][10/20]'])
        _text_log(work, '20240102_000000', ['Epoch(train) [1][10/20]'])
        _text_log(work, '20240103_000000', [
            'Load checkpoint from work/epoch_1.pth',
            'resumed epoch: 1, iter: 20', 'Epoch(train) [2][10/20]'
        ])
    _test_run(work, '20240104_000000')
    return newest


@pytest.mark.parametrize('text_logs', [True, False])
def test_resumed_run_covers_every_iteration(tmp_path, capsys, text_logs):
    work = str(tmp_path / 'work')
    newest = _resumed_work_dir(work, text_logs)
    curves = analyze_logs.plot_curve([work], ['loss', 'refer_seg/mIoU'],
                                     str(tmp_path / 'c.png'))
    # run 1 up to the checkpoint it resumed from, then run 2: the later
    # run's value wins at iteration 30, run 0 is not part of it
    assert curves[work]['loss'] == ([10, 20, 30, 40], [0.9, 0.8, 0.7, 0.6])
    # validation of epoch e at the last iteration of epoch e
    assert curves[work]['refer_seg/mIoU'] == ([20, 40], [10.0, 20.0])
    # the resumed run's own file is that run alone
    assert analyze_logs.plot_curve(
        [newest], ['loss'], str(tmp_path / 'd.png'))[newest]['loss'] == (
            [30, 40], [0.7, 0.6])

    res = analyze_logs.main(['cal_train_time', work])[0]
    assert res['log'] == newest and len(res['logs']) == 2
    assert '20240102_000000' in res['logs'][0]
    assert res['iters'] == 40
    # epoch 1: run 1's lines without the first; epoch 2: run 2's
    assert res['epochs'] == {1: pytest.approx(1.0), 2: pytest.approx(2.0)}
    assert 'resumed run, merged with: ' in capsys.readouterr().out


def test_fresh_rerun_is_not_merged(tmp_path):
    work = str(tmp_path / 'work')
    _write_work_dir(work, '20240101_000000',
                    [_train_line(i, 1, 9.0) for i in (10, 20, 30)])
    _text_log(work, '20240101_000000', ['Epoch(train) [1][10/30]'])
    # started again from scratch (no "resumed" line), stopped earlier
    _write_work_dir(work, '20240102_000000', [_train_line(10, 1, 0.5)])
    _text_log(work, '20240102_000000', ['Epoch(train) [1][10/30]'])
    curves = analyze_logs.plot_curve([work], ['loss'],
                                     str(tmp_path / 'c.png'))
    assert curves[work]['loss'] == ([10], [0.5])
