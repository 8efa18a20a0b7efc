# Copyright (c) cmdyseg contributors. All rights reserved.
"""tools/main_job.py decides whether data/synthetic_a2d is the default
dataset or must be (re)generated."""
import inspect
import json
import os.path as osp

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
