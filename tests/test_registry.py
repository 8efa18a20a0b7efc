# Copyright (c) cmdyseg contributors. All rights reserved.
import importlib
import logging

import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope, Registry
from mmengine.registry import root as mmengine_roots
from mmengine.runner import Runner
from torch.utils.data import Dataset

from cmdyseg import registry as cmdyseg_registry
from cmdyseg.registry import LOCATIONS, MODELS
from cmdyseg.utils import register_all_modules


@pytest.mark.parametrize(
    'location', sorted({loc
                        for locs in LOCATIONS.values() for loc in locs}))
def test_every_registry_location_imports(location):
    importlib.import_module(location)


def test_register_all_modules_sets_default_scope():
    register_all_modules(init_default_scope=True)
    assert DefaultScope.get_current_instance().scope_name == 'cmdyseg'


def test_mmaction_i3d_builds_through_cmdyseg_registry():
    """mmaction2's I3D (ResNet3d with I3D inflation) is reachable from the
    cmdyseg scope as ``mmaction.ResNet3d`` and runs on a small clip."""
    cfg = dict(
        type='mmaction.ResNet3d',
        depth=50,
        pretrained=None,
        pretrained2d=False,
        conv1_kernel=(5, 7, 7),
        conv1_stride_t=2,
        pool1_stride_t=2,
        inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
        zero_init_residual=False)
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        model = MODELS.build(cfg)
    assert type(model).__module__.startswith('mmaction.')
    model.init_weights()
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 8, 64, 64))
    # conv1 + pool1 halve time twice, layer2 once more: 8 -> 1; /32 space
    assert out.shape == (1, 2048, 1, 2, 2)
    assert torch.isfinite(out).all()


MMENGINE_ROOTS = {
    name: reg
    for name, reg in vars(mmengine_roots).items()
    if isinstance(reg, Registry)
}


def test_every_mmengine_root_has_a_cmdyseg_child():
    assert len(MMENGINE_ROOTS) >= 23  # mmengine 0.10's roots
    for name, root in MMENGINE_ROOTS.items():
        child = getattr(cmdyseg_registry, name, None)
        assert isinstance(child, Registry), name
        assert child.scope == 'cmdyseg' and child.parent is root, name
        assert child.name == root.name, name
        assert root._search_child('cmdyseg') is child, name
        assert name in cmdyseg_registry.__all__
    # a root with nothing of ours imports nothing; ours name their modules
    assert cmdyseg_registry.OPTIMIZERS._locations == []
    assert cmdyseg_registry.MODELS._locations == LOCATIONS['model']
    assert not hasattr(cmdyseg_registry, 'LOSSES')  # losses are MODELS


class _Regressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, x, y=None, mode='tensor'):
        pred = self.fc(x).squeeze(1)
        if mode == 'loss':
            return dict(loss=((pred - y)**2).mean())
        return [dict(pred=p, y=t) for p, t in zip(pred, y)]


class _Points(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = torch.randn(3, generator=torch.Generator().manual_seed(i))
        return dict(x=x, y=x.sum())


class _MSE(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(
            float((s['pred'] - s['y'])**2) for s in data_samples)

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))


@pytest.fixture
def log_records(monkeypatch):
    """Every record logged through any logger (mmengine's MMLogger does
    not propagate, so caplog would miss them)."""
    records = []
    handle = logging.Logger.handle

    def _record(self, record):
        records.append(record)
        return handle(self, record)

    monkeypatch.setattr(logging.Logger, 'handle', _record)
    return records


def test_runner_in_cmdyseg_scope_finds_every_registry(tmp_path, log_records,
                                                      recwarn):
    """A run in the cmdyseg scope builds its runner, loops, optimizer
    wrapper, schedulers, hooks, log processor, evaluator, visualizer ...
    through cmdyseg's children: no "Failed to search registry" fallback."""
    loader = dict(
        dataset=_Points(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=4,
        collate_fn=dict(type='default_collate'))
    runner = Runner(
        model=_Regressor(),
        work_dir=str(tmp_path),
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=dict(type=_MSE),
        optim_wrapper=dict(
            type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01)),
        param_scheduler=dict(type='ConstantLR', factor=1.0),
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=2),
        val_cfg=dict(),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(type='LogProcessor', by_epoch=False),
        visualizer=dict(type='Visualizer', name='cmdyseg_registry_test'),
        default_scope='cmdyseg')
    runner.train()
    assert DefaultScope.get_current_instance().scope_name == 'cmdyseg'
    messages = [r.getMessage() for r in log_records]
    assert any('mse' in m for m in messages)  # the run did log
    failed = [m for m in messages if 'Failed to search registry' in m]
    assert not failed, failed
    assert not [w for w in recwarn if 'registry' in str(w.message)]
