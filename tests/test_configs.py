# Copyright (c) cmdyseg contributors. All rights reserved.
"""Every config builds; the tiny one trains a step and predicts; the model
bases inherit Table 3 row by row."""
import ast
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from tiny_batch import params_without_grad, tiny_batch

from cmdyseg.registry import DATASETS, MODELS
from cmdyseg.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'cmdyconv', '*.py')))
TINY = osp.join(REPO, 'configs', 'cmdyconv',
                'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')

BASE_MODELS = osp.join(REPO, 'configs', '_base_', 'models')
# (file, the file it inherits): each Table 3 row adds what it changes to
# the row above; the tiny models follow the same pattern
MODEL_CHAIN = [
    ('dyconv_i3d-r50.py', None),
    ('group-dyconv_i3d-r50.py', 'dyconv_i3d-r50.py'),
    ('cmdyconv_i3d-r50.py', 'group-dyconv_i3d-r50.py'),
    ('dcmdyconv_i3d-r50.py', 'cmdyconv_i3d-r50.py'),
    ('dcmdyconv-temporal_i3d-r50.py', 'dcmdyconv_i3d-r50.py'),
    ('dcmdyconv-temporal_i3d-inception.py', 'dcmdyconv-temporal_i3d-r50.py'),
    ('dyconv_i3d-r18-tiny.py', 'dyconv_i3d-r50.py'),
    ('cmdyconv_i3d-r18-tiny.py', 'dyconv_i3d-r18-tiny.py'),
    ('dcmdyconv-temporal_i3d-r18-tiny.py', 'cmdyconv_i3d-r18-tiny.py'),
]

register_all_modules(init_default_scope=False)


def _read_base(path):
    """The ``_base_`` list a config file assigns (None without one)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == '_base_' for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def test_model_bases_inherit_row_by_row():
    on_disk = {
        osp.basename(p)
        for p in glob.glob(osp.join(BASE_MODELS, '*.py'))
    }
    assert on_disk == {name for name, _ in MODEL_CHAIN}
    for name, parent in MODEL_CHAIN:
        path = osp.join(BASE_MODELS, name)
        expected = None if parent is None else [f'./{parent}']
        assert _read_base(path) == expected, name
        with open(path) as f:
            text = f.read()
        # only the Inception backbone replaces a whole sub-dict (another
        # type with other arguments)
        assert ('_delete_' in text) == (
            name == 'dcmdyconv-temporal_i3d-inception.py'), name


def test_there_is_one_config_per_table3_row_and_a_tiny_one():
    names = {osp.basename(c) for c in CONFIGS}
    for row in ('dyconv', 'group-dyconv', 'cmdyconv', 'dcmdyconv',
                'dcmdyconv-temporal'):
        assert f'{row}_i3d-r50_4xb9-10e_a2d-sentences-512x512.py' in names
    assert osp.basename(TINY) in names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'cmdyseg'
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        model = MODELS.build(cfg.model)
        for split in ('train', 'val', 'test'):
            loader = cfg.get(f'{split}_dataloader')
            if loader is not None:
                # the dataset classes resolve (their files are not read)
                assert DATASETS.get(loader['dataset']['type']) is not None
    assert sum(p.numel() for p in model.parameters()) > 0
    head_type = cfg.model.head.type
    assert type(model.head).__name__ == head_type


def test_tiny_config_trains_and_predicts():
    cfg = Config.fromfile(TINY)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(tiny_batch(), training=True)
    assert data['inputs'].shape == (2, 3, 8, 64, 64)
    logits = model(**data, mode='tensor')
    # F_V^M is 4x the stride-16 map, x2 with the stem skip: 64 / 16 * 8;
    # the refined response has its size
    assert logits.shape == (2, 1, 32, 32)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_mask', 'loss_dice', 'aux.loss_ce'}
    assert all(v.ndim == 0 for v in losses.values())
    sum(losses.values()).backward()
    missing = params_without_grad(model)
    assert not missing, f'parameters without gradient: {missing}'

    model.eval()
    with torch.no_grad():
        preds = model(**data, mode='predict')
    for pred in preds:
        assert pred.pred_mask.shape == (48, 80)
        assert pred.pred_mask.data.dtype == torch.uint8
        assert pred.seg_logits.shape == (64, 64)
        # the half-max rule always keeps the peak
        assert pred.pred_mask.data.sum() > 0


def test_metafile_lists_every_config_once():
    """OpenMMLab metafile: one model entry per config file, no entry for a
    missing file, names matching the file names."""
    import yaml
    with open(osp.join(REPO, 'configs', 'cmdyconv', 'metafile.yml')) as f:
        models = yaml.safe_load(f)['Models']
    listed = [m['Config'] for m in models]
    assert len(listed) == len(set(listed))
    on_disk = {osp.relpath(c, REPO) for c in CONFIGS}
    assert set(listed) == on_disk
    for m in models:
        assert m['Name'] == osp.splitext(osp.basename(m['Config']))[0]
