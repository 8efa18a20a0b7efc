# Copyright (c) cmdyseg contributors. All rights reserved.
"""tools/main_job.py decides whether data/synthetic_a2d is the default
dataset or must be (re)generated."""
import inspect
import json
import os.path as osp
import re

from load_script import load_script

from cmdyseg.synthetic import generate_synthetic_a2d

SCRIPT = osp.join(
    osp.dirname(__file__), '..', '..', 'tools', 'main_job.py')


def _load():
    return load_script(SCRIPT, 'main_job')


def _write_meta(root, params):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / 'synthetic_meta.json', 'w') as f:
        json.dump(dict(params=params), f)


def _defaults():
    sig = inspect.signature(generate_synthetic_a2d)
    params = {k: p.default for k, p in sig.parameters.items()
              if p.default is not inspect.Parameter.empty
              and k not in ('overwrite', )}
    params['seed'] = 0
    return params


def test_missing_data_is_generated(tmp_path):
    ok, why = _load().data_is_current(str(tmp_path / 'none'))
    assert not ok and 'not generated' in why


def test_default_parameters_are_current(tmp_path):
    _write_meta(tmp_path / 'd', _defaults())
    assert _load().data_is_current(str(tmp_path / 'd')) == (True, '')


def test_other_parameters_are_named(tmp_path):
    params = dict(_defaults(), num_train=150, seed=3)
    _write_meta(tmp_path / 'd', params)
    ok, why = _load().data_is_current(str(tmp_path / 'd'))
    assert not ok
    assert 'num_train=150' in why and 'seed=3' in why


def test_real_generator_meta_is_compared(tmp_path):
    """A real (small) dataset records the parameters it was made with."""
    root = tmp_path / 'small'
    generate_synthetic_a2d(str(root), num_train=1, num_test=1, num_missed=0,
                           num_frames=8, height=32, width=32)
    ok, why = _load().data_is_current(str(root))
    assert not ok and 'num_train=1' in why and 'num_frames=8' in why


def test_unreadable_meta_is_named(tmp_path):
    root = tmp_path / 'd'
    root.mkdir()
    (root / 'synthetic_meta.json').write_text('{not json')
    ok, why = _load().data_is_current(str(root))
    assert not ok and 'synthetic_meta.json is unreadable' in why


def test_progress_line_picks_mmengine_iteration_lines():
    progress_line = _load().progress_line
    line = ('12/01 22:10:57 - mmengine - INFO - Epoch(train)  [1][ 10/125]  '
            'base_lr: 1.0000e-03 lr: 1.0000e-03  eta: 0:09:12  time: 1.2  '
            'data_time: 0.01  memory: 0  loss: 0.6931  loss_mask: 0.6931\n')
    assert progress_line(line) == \
        '[train] epoch 1 iter 10/125 loss 0.6931 eta 0:09:12'
    assert progress_line('Iter(test) [ 3/40]  eta: 0:00:31  time: 0.5') == \
        '[test] iter 3/40 eta 0:00:31'
    assert progress_line(
        '12/01 22:10:57 - mmengine - INFO - A2DSentencesDataset: 4 samples; '
        '0 files skipped; rows=9') == \
        'A2DSentencesDataset: 4 samples; 0 files skipped; rows=9'
    assert progress_line('12/01 22:10:57 - mmengine - INFO - Saving '
                         'checkpoint at 1 epochs') == \
        'Saving checkpoint at 1 epochs'
    assert progress_line('12/01 - mmengine - WARNING - "FileClient" will be '
                         'deprecated') is None


def test_training_step_prints_progress(tmp_path, capsys):
    """The main job's training step (tools/train.py in a subprocess, its
    output in train.log) shows its progress on the console."""
    data = str(tmp_path / 'data')
    generate_synthetic_a2d(data, num_train=2, num_test=1, num_missed=0,
                           num_frames=8, height=32, width=32)
    opts = ['train_cfg.max_epochs=1', 'default_hooks.logger.interval=1',
            f'train_dataloader.dataset.data_root={data}',
            'train_dataloader.dataset.indices=2',
            'train_dataloader.batch_size=1',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False']
    work = str(tmp_path / 'work')
    seconds = _load().train(work, seed=0, cfg_options=opts)
    assert seconds > 0
    out = capsys.readouterr().out
    # both iterations, with the loss and the ETA of the whole run
    for i in (1, 2):
        assert re.search(rf'^  \[train\] epoch 1 iter {i}/2 loss [0-9.]+ '
                         r'eta \d+:\d\d:\d\d$', out, re.M), out
    # the dataset's size is the one the run uses (indices=2)
    assert re.search(r'^  A2DSentencesDataset: 2 samples \(of \d+ indexed; '
                     r'indices=2\)', out, re.M), out
    # the full output is in the log, the console only gets those lines
    with open(osp.join(work, 'train.log')) as f:
        log = f.read()
    assert 'Epoch(train) [1][2/2]' in log and 'lr:' in log
    assert 'lr:' not in out


def _scores(cue_values):
    """evaluate_masks.py --by-cue --out layout from {cue: (n, {k: v})}."""
    out = {}
    for cue, (n, values) in cue_values.items():
        out[cue] = {f'{cue}/{k}': v for k, v in values.items()}
        out[cue]['num_samples'] = n
    return out


def test_cue_verdicts_need_every_metric_strictly_above_union():
    mod = _load()
    keys = ('P@0.5', 'P@0.9')
    tables = dict(
        empty=_scores({'all': (10, {'P@0.5': 0., 'P@0.9': 0.}),
                       'motion': (4, {'P@0.5': 0., 'P@0.9': 0.})}),
        union=_scores({'all': (10, {'P@0.5': 30., 'P@0.9': 6.}),
                       'motion': (4, {'P@0.5': 25., 'P@0.9': 0.})}),
        model=_scores({'all': (10, {'P@0.5': 60., 'P@0.9': 7.}),
                       'motion': (4, {'P@0.5': 50., 'P@0.9': 0.})}))
    verdicts = mod.cue_verdicts(tables, keys=keys)
    assert list(verdicts) == ['all', 'motion']
    assert verdicts['all']['verdict'] == 'above'
    assert verdicts['all']['below'] == []
    assert verdicts['all']['metrics']['P@0.9'] == dict(
        empty=0., union=6., model=7.)
    # a tie (0 vs 0) is not above
    assert verdicts['motion']['verdict'] == 'below'
    assert verdicts['motion']['below'] == ['P@0.9']
    line = mod.verdict_line('motion', verdicts['motion'])
    assert line == ('motion (4 samples): BELOW the union baseline on '
                    'P@0.9 0.0 vs 0.0')
    assert 'ABOVE' in mod.verdict_line('all', verdicts['all'])
    # it is what main() writes as JSON
    assert json.loads(json.dumps(verdicts)) == verdicts
