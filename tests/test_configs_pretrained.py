# Copyright (c) cmdyseg contributors. All rights reserved.
"""The configs of configs/cmdyconv_pretrained/ (all-MiniLM-L6-v2 text
encoder, Video Swin backbone) and their components in
configs/_base_/models/components/: they build, and the tiny MiniLM ones
train a step and predict on the real weights."""
import ast
import glob
import os.path as osp

import pytest
import torch
from minilm_files import minilm_model_dir  # noqa: F401  (fixture)
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from tiny_batch import params_without_grad, tiny_batch

from cmdyseg.registry import MODELS
from cmdyseg.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FOLDER = osp.join(REPO, 'configs', 'cmdyconv_pretrained')
CONFIGS = sorted(glob.glob(osp.join(FOLDER, '*.py')))
COMPONENTS = osp.join(REPO, 'configs', '_base_', 'models', 'components')
TINY_FROZEN = osp.join(
    FOLDER, 'dcmdyconv-temporal_i3d-r18_minilm-l6-frozen_1xb8-2e_'
    'synthetic-a2d-8x64x64.py')
TINY_TOP2 = osp.join(
    FOLDER, 'dcmdyconv-temporal_i3d-r18_minilm-l6-top2_1xb8-2e_'
    'synthetic-a2d-8x64x64.py')
SWIN_A2D = osp.join(
    FOLDER, 'dcmdyconv-temporal_swin3d-t_4xb9-10e_a2d-sentences-512x512.py')

register_all_modules(init_default_scope=False)


@pytest.fixture
def minilm_cache(minilm_model_dir, monkeypatch):  # noqa: F811
    """$CMDYSEG_CACHE_DIR pointing at the cache holding the real weights,
    so that the configs' model_dir=None finds them."""
    monkeypatch.setenv('CMDYSEG_CACHE_DIR',
                       osp.dirname(osp.dirname(minilm_model_dir)))
    return minilm_model_dir


def _uses_minilm(cfg):
    return cfg.model.text_encoder.type == 'TransformerSentenceEncoder'


def _build(cfg):
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        return MODELS.build(cfg.model)


def test_the_configs_and_components_are_there():
    names = {osp.basename(c) for c in CONFIGS}
    assert osp.basename(TINY_FROZEN) in names
    assert osp.basename(TINY_TOP2) in names
    assert osp.basename(SWIN_A2D) in names
    assert ('dcmdyconv-temporal_i3d-r50_minilm-l6_4xb9-10e_a2d-sentences-'
            '512x512.py') in names
    assert osp.isfile(osp.join(FOLDER, 'README.md'))
    # components define a named piece, never `model`: they combine with a
    # model base (mmengine refuses two bases defining the same key)
    for path in glob.glob(osp.join(COMPONENTS, '*.py')):
        with open(path) as f:
            tree = ast.parse(f.read())
        names = {
            t.id
            for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets
        }
        assert 'model' not in names and '_base_' not in names, path


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path, request):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'cmdyseg'
    if _uses_minilm(cfg):
        request.getfixturevalue('minilm_cache')
    model = _build(cfg)
    text = model.text_encoder
    assert text.out_channels == cfg.model.head.text_channels
    assert model.neck.in_channels == model.backbone.out_channels
    if _uses_minilm(cfg):
        assert type(text).__name__ == 'TransformerSentenceEncoder'
        assert text.num_layers == 6
    if 'swin3d-t' in path:
        assert type(model.backbone).__name__ == 'Swin3dEncoder'
        assert model.backbone.out_channels == 384


def test_tiny_minilm_config_trains_and_predicts(minilm_cache):
    cfg = Config.fromfile(TINY_FROZEN)
    torch.manual_seed(0)
    model = _build(cfg)
    fresh = {k: v.clone() for k, v in model.text_encoder.transformer.
             state_dict().items()}
    model.init_weights()
    # mmengine's init_weights leaves the pretrained transformer alone
    after = model.text_encoder.transformer.state_dict()
    assert all(torch.equal(fresh[k], after[k]) for k in fresh)
    model.train()
    assert not model.text_encoder.transformer.training
    data = model.data_preprocessor(tiny_batch(), training=True)
    logits = model(**data, mode='tensor')
    assert logits.shape == (2, 1, 32, 32)
    losses = model(**data, mode='loss')
    sum(losses.values()).backward()
    missing = params_without_grad(model)
    assert not missing, f'parameters without gradient: {missing}'
    assert not any(p.requires_grad
                   for p in model.text_encoder.transformer.parameters())
    model.eval()
    with torch.no_grad():
        preds = model(**data, mode='predict')
    assert all(p.pred_mask.shape == (48, 80) for p in preds)


def test_tiny_top2_config_fine_tunes_two_blocks_at_a_low_lr(minilm_cache):
    cfg = Config.fromfile(TINY_TOP2)
    model = _build(cfg)
    model.init_weights()
    model.train()
    text = model.text_encoder
    trainable = {
        n for n, p in text.transformer.named_parameters() if p.requires_grad
    }
    assert trainable and all(
        n.startswith(('encoder.layer.4.', 'encoder.layer.5.'))
        for n in trainable)
    assert not text.transformer.encoder.layer[3].training
    assert text.transformer.encoder.layer[4].training
    data = model.data_preprocessor(tiny_batch(), training=True)
    model(**data, mode='loss')['loss_mask'].backward()
    with_grad = {
        n
        for n, p in text.transformer.named_parameters()
        if p.grad is not None and p.grad.abs().sum() > 0
    }
    assert with_grad == trainable
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {}
    for group in optim.optimizer.param_groups:
        for p in group['params']:
            lrs[id(p)] = group['lr']
    layer5 = text.transformer.encoder.layer[5].output.dense.weight
    assert lrs[id(layer5)] == pytest.approx(2e-5)
    assert lrs[id(text.projection.weight)] == pytest.approx(1e-3)


def test_swin_config_runs_a_small_clip():
    cfg = Config.fromfile(SWIN_A2D)
    # the GRU's word2vec file is not needed to check the video side
    torch.manual_seed(0)
    model = _build(cfg)
    model.backbone.init_weights()
    model.eval()
    with torch.no_grad():
        feats = model.backbone(torch.randn(1, 3, 16, 64, 64))
        visual = model.neck(feats)
    assert feats[0].shape == (1, 384, 8, 4, 4)
    assert visual.shape[:2] == (1, cfg.model.neck.out_channels)
    assert visual.shape[-2:] == (16, 16)
