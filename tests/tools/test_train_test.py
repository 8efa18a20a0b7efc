# Copyright (c) cmdyseg contributors. All rights reserved.
"""End-to-end tests of tools/train.py and tools/test.py on a tiny synthetic
A2D dataset: a short training run, its resumption, evaluation with
``--dump`` (.json and .pkl), checkpoint checks, and analyze_logs on the
logs the run wrote.

The tools run in-process through their ``main(argv)`` (``test.py``'s
returns the metrics); the command line itself is exercised by one
subprocess call here and by tests/tools/test_dist_train.py.
"""
import glob
import hashlib
import json
import os
import os.path as osp
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from load_script import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(
    ROOT, 'configs', 'cmdyconv',
    'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
NUM_TRAIN = 2  # training samples used: 1 iteration per epoch at batch 2
NUM_VAL = 2  # validation samples used
NUM_TEST = 4  # test samples used: 2 iterations at batch 2
FRAME_SHAPE = (48, 64)  # (H, W) of the generated frames


def _load_tool(rel_path, name):
    return load_script(osp.join(ROOT, *rel_path.split('/')), name)


train_tool = _load_tool('tools/train.py', 'cmdyseg_tools_train')
test_tool = _load_tool('tools/test.py', 'cmdyseg_tools_test')
analyze_logs = _load_tool('tools/analysis/analyze_logs.py',
                          'cmdyseg_tools_analyze_logs')


def tiny_cfg_options(data_root, val_interval=1):
    """--cfg-options that shrink the tiny config to a few iterations."""
    opts = []
    for split, num in (('train', NUM_TRAIN), ('val', NUM_VAL),
                       ('test', NUM_TEST)):
        loader = f'{split}_dataloader'
        opts += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.dataset.indices={num}',
            f'{loader}.batch_size=2',
            f'{loader}.num_workers=0',
            f'{loader}.persistent_workers=False',
        ]
    opts += [
        f'train_cfg.val_interval={val_interval}',
        'default_hooks.logger.interval=1',
        'randomness.seed=0',
    ]
    return opts


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    from cmdyseg.synthetic import generate_synthetic_a2d
    root = str(tmp_path_factory.mktemp('synthetic_a2d'))
    generate_synthetic_a2d(
        root, seed=0, num_train=3, num_test=2, num_frames=12,
        height=FRAME_SHAPE[0], width=FRAME_SHAPE[1], overwrite=True)
    return root


def _train(work_dir, data_root, max_epochs, resume=False):
    argv = [CONFIG, '--work-dir', work_dir]
    if resume:
        argv.append('--resume')
    argv += ['--cfg-options', f'train_cfg.max_epochs={max_epochs}'
             ] + tiny_cfg_options(data_root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('LOCAL_RANK', '0')
        train_tool.main(argv)


def _runs(work_dir):
    """Run folders (timestamps) of a work dir, oldest first."""
    return sorted(
        d for d in os.listdir(work_dir)
        if re.match(r'^\d{8}_\d{6}$', d))


def _json_log(work_dir, run):
    path = osp.join(work_dir, run, 'vis_data', f'{run}.json')
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope='module')
def trained(tmp_path_factory, data_root):
    """Train 1 epoch (iteration 1), then resume to 2 epochs (iteration
    2)."""
    work_dir = str(tmp_path_factory.mktemp('work_dir'))
    _train(work_dir, data_root, max_epochs=1)
    runs_after_first = _runs(work_dir)
    _train(work_dir, data_root, max_epochs=2, resume=True)
    return dict(
        work_dir=work_dir,
        first_run=runs_after_first[-1],
        second_run=_runs(work_dir)[-1])


def test_train_writes_checkpoints_and_resumes(trained):
    work_dir = trained['work_dir']
    first, second = trained['first_run'], trained['second_run']
    assert first != second

    # the interrupted run stopped after epoch 1 = iteration 1
    first_train = [r for r in _json_log(work_dir, first) if 'iter' in r]
    assert [r['iter'] for r in first_train] == [1]
    ckpt1 = torch.load(
        osp.join(work_dir, 'epoch_1.pth'), map_location='cpu',
        weights_only=False)
    assert (ckpt1['meta']['epoch'], ckpt1['meta']['iter']) == (1, 1)
    assert 'optimizer' in ckpt1 and 'state_dict' in ckpt1
    # the best checkpoint by validation mIoU (default_runtime's save_best)
    assert glob.glob(osp.join(work_dir, 'best_refer_seg_mIoU_epoch_*.pth'))

    # the resumed run continued at iteration 2 in epoch 2
    with open(osp.join(work_dir, second, f'{second}.log')) as f:
        text = f.read()
    assert 'resumed epoch: 1, iter: 1' in text
    second_train = [r for r in _json_log(work_dir, second) if 'iter' in r]
    assert [r['iter'] for r in second_train] == [2]
    assert {r['epoch'] for r in second_train} == {2}
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert osp.basename(f.read().strip()) == 'epoch_2.pth'
    ckpt2 = torch.load(
        osp.join(work_dir, 'epoch_2.pth'), map_location='cpu',
        weights_only=False)
    assert (ckpt2['meta']['epoch'], ckpt2['meta']['iter']) == (2, 2)
    # the resumed weights changed during epoch 2
    changed = [
        k for k, v in ckpt2['state_dict'].items()
        if v.is_floating_point()
        and not torch.equal(v, ckpt1['state_dict'][k])
    ]
    assert changed
    # validation ran after each epoch with the paper's metric keys
    val = [r for r in _json_log(work_dir, second) if 'iter' not in r]
    assert val and val[-1]['step'] == 2
    assert 0.0 <= val[-1]['refer_seg/mIoU'] <= 100.0


def _test(monkeypatch, work_dir, checkpoint, data_root, extra=()):
    monkeypatch.setenv('LOCAL_RANK', '0')
    argv = [CONFIG, checkpoint, '--work-dir', work_dir, *extra,
            '--cfg-options'] + tiny_cfg_options(data_root)
    return test_tool.main(argv)


def test_test_tool_metrics_and_json_dump(trained, data_root, tmp_path,
                                         monkeypatch):
    from pycocotools import mask as mask_utils

    # a checkpoint named with its correct sha256 prefix passes the check
    src = osp.join(trained['work_dir'], 'epoch_2.pth')
    with open(src, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    ckpt = str(tmp_path / f'tiny-{digest[:8]}.pth')
    shutil.copy(src, ckpt)
    dump = str(tmp_path / 'preds.json')
    metrics = _test(monkeypatch, str(tmp_path / 'work'), ckpt, data_root,
                    ['--dump', dump])
    for key in ('mIoU', 'oIoU', 'P@0.5', 'P@0.9', 'mAP', 'coco/AP'):
        assert f'refer_seg/{key}' in metrics
    with open(dump) as f:
        entries = json.load(f)
    assert len(entries) == NUM_TEST
    ious = []
    for e in entries:
        assert e['ori_shape'] == list(FRAME_SHAPE)
        mask = mask_utils.decode(
            dict(size=e['segmentation']['size'],
                 counts=e['segmentation']['counts'].encode('ascii')))
        assert mask.shape == FRAME_SHAPE
        ious.append(e['iou'])
    # the dumped per-sample IoUs are the ones the metric averaged
    assert metrics['refer_seg/mIoU'] == pytest.approx(
        100.0 * np.mean(ious), abs=1e-6)


def test_test_tool_pkl_dump(trained, data_root, tmp_path, monkeypatch):
    dump = str(tmp_path / 'preds.pkl')
    metrics = _test(monkeypatch, str(tmp_path / 'work'),
                    osp.join(trained['work_dir'], 'epoch_2.pth'), data_root,
                    ['--dump', dump])
    assert 'refer_seg/mIoU' in metrics
    with open(dump, 'rb') as f:
        samples = pickle.load(f)
    assert len(samples) == NUM_TEST
    for s in samples:
        pred = np.asarray(s['pred_mask']['data'])
        assert pred.shape == (1, ) + FRAME_SHAPE
        assert set(np.unique(pred).tolist()) <= {0, 1}
        assert s['ori_shape'] == FRAME_SHAPE
    # the same samples as the test split, in order, without duplicates
    keys = [(s['video_id'], s['frame_id'], s['instance_id'], s['sentence'])
            for s in samples]
    assert len(set(keys)) == NUM_TEST


def test_test_tool_rejects_bad_checkpoints(trained, data_root, tmp_path,
                                           monkeypatch):
    from cmdyseg.utils.checkpoint import CheckpointError

    wrong = str(tmp_path / 'tiny-deadbeef.pth')
    shutil.copy(osp.join(trained['work_dir'], 'epoch_2.pth'), wrong)
    with pytest.raises(CheckpointError, match='deadbeef') as info:
        _test(monkeypatch, str(tmp_path / 'work'), wrong, data_root)
    assert wrong in str(info.value)
    missing = str(tmp_path / 'no_such.pth')
    with pytest.raises(CheckpointError, match='not found.*no_such.pth'):
        _test(monkeypatch, str(tmp_path / 'work'), missing, data_root)
    # and from the command line: a non-zero exit with the message
    proc = subprocess.run(
        [sys.executable,
         osp.join(ROOT, 'tools', 'test.py'), CONFIG, wrong],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'promises sha256 deadbeef' in proc.stderr


def test_analyze_logs_on_training_logs(trained, tmp_path, capsys):
    work_dir = trained['work_dir']
    out = str(tmp_path / 'curves.png')
    curves = analyze_logs.main([
        'plot_curve', work_dir, '--keys', 'loss_mask', 'refer_seg/mIoU',
        '--out', out
    ])
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # a work dir means its training run, the resumed one (iteration 2),
    # merged with the run it resumed from (iteration 1)
    first = _json_log(work_dir, trained['first_run'])
    log = _json_log(work_dir, trained['second_run'])
    (per_key, ) = curves.values()
    xs, ys = per_key['loss_mask']
    assert xs == [1, 2]
    assert ys == [r['loss_mask'] for r in first + log if 'iter' in r]
    # validation of epoch e sits at the last iteration of epoch e
    val = [r for r in first + log if 'iter' not in r]
    assert per_key['refer_seg/mIoU'] == (
        [1, 2], [v['refer_seg/mIoU'] for v in val])

    first_log = osp.join(work_dir, trained['first_run'], 'vis_data',
                         trained['first_run'] + '.json')
    (res, ) = analyze_logs.main(['cal_train_time', first_log])
    (record, ) = [
        r for r in _json_log(work_dir, trained['first_run']) if 'iter' in r
    ]
    # a single line per epoch is kept although it is the first
    assert res['average_iter_time'] == pytest.approx(record['time'])
    assert res['iters'] == 1
    assert 'average iter time' in capsys.readouterr().out
