# Copyright (c) cmdyseg contributors. All rights reserved.
"""The tiny configs' cosine schedule follows ``train_cfg.max_epochs``.

The schedule (configs/_base_/schedules/adam-cosine_2e.py) leaves ``T_max``
and ``end`` unset; mmengine's Runner sets ``end`` to the train loop's
``max_epochs`` when it builds the schedulers, after the command line was
merged, so ``--cfg-options train_cfg.max_epochs=4`` anneals over 4 epochs
instead of climbing back up after the config's 2.
"""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'cmdyconv', '*_synthetic-a2d-*.py')))
EPOCH_LENGTH = 3  # iterations per epoch of the toy loader


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(2))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = (inputs * self.weight).sum()
        return dict(loss=out) if mode == 'loss' else out


class _RecordLR(Hook):
    """The learning rate each iteration trains with."""

    def __init__(self):
        self.lrs = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])

    def after_train(self, runner):
        self.schedulers = runner.param_schedulers


def _train_lrs(config, tmp_path, max_epochs):
    cfg = Config.fromfile(config)
    # as tools/train.py applies --cfg-options
    cfg.merge_from_dict({'train_cfg.max_epochs': max_epochs})
    recorder = _RecordLR()
    runner = Runner(
        model=_ToyModel(),
        work_dir=str(tmp_path),
        experiment_name=f'schedule_{osp.basename(tmp_path)}',
        train_dataloader=DataLoader(
            [dict(inputs=torch.ones(2))] * EPOCH_LENGTH, batch_size=1),
        train_cfg=cfg.train_cfg,
        optim_wrapper=cfg.optim_wrapper,
        param_scheduler=cfg.param_scheduler,
        default_hooks=dict(
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=None,
            logger=None),
        custom_hooks=[recorder],
        default_scope=cfg.default_scope)
    runner.train()
    return cfg, recorder


@pytest.mark.parametrize('config', TINY_CONFIGS, ids=osp.basename)
@pytest.mark.parametrize('max_epochs', [4, 1])
def test_cosine_schedule_anneals_over_all_epochs(config, tmp_path,
                                                 max_epochs):
    cfg, recorder = _train_lrs(config, tmp_path, max_epochs)
    (sched, ) = cfg.param_scheduler
    assert sched.type == 'CosineAnnealingLR'
    lr0, eta_min = cfg.optim_wrapper.optimizer.lr, sched.eta_min
    lrs = recorder.lrs
    total = max_epochs * EPOCH_LENGTH
    assert len(lrs) == total
    assert lrs[0] == pytest.approx(lr0)
    # strictly decreasing over every iteration of every epoch ...
    assert all(b < a for a, b in zip(lrs, lrs[1:])), lrs
    # ... along one half cosine over the whole run, which reaches eta_min
    # at step `total`, the end of the last iteration (mmengine's schedulers
    # set the value for the iteration to come, so the last one trains just
    # above eta_min)
    (built, ) = recorder.schedulers
    assert (built.begin, built.end, built.T_max) == (0, total, total)
    for step, lr in enumerate(lrs):
        expected = eta_min + (lr0 - eta_min) * (
            1 + math.cos(math.pi * step / total)) / 2
        assert lr == pytest.approx(expected, rel=1e-6), (step, lrs)
    assert lrs[-1] - eta_min < (lr0 - eta_min) * (math.pi / total)**2 / 4


def test_tiny_schedule_leaves_its_length_to_the_train_loop():
    for config in TINY_CONFIGS:
        cfg = Config.fromfile(config)
        for sched in cfg.param_scheduler:
            assert 'T_max' not in sched and 'end' not in sched, config
