# Copyright (c) cmdyseg contributors. All rights reserved.
"""mmengine checkpoints round-trip under torch's ``weights_only=True``."""
import os
import os.path as osp
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch.utils.data import Dataset

import cmdyseg  # noqa: F401  (installs the checkpoint allow-list)


class _Regressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, x, y=None, mode='tensor'):
        pred = self.fc(x).squeeze(1)
        if mode == 'loss':
            return dict(loss=((pred - y)**2).mean())
        return pred


class _Points(Dataset):

    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(3, generator=g)
        return dict(x=x, y=x.sum())


def _runner(work_dir, max_iters, resume):
    return Runner(
        model=_Regressor(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Points(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.05)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=3,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        resume=resume,
        randomness=dict(seed=0),
        default_scope='mmengine')


def test_resume_restores_iteration_optimizer_and_weights(tmp_path):
    first = _runner(tmp_path, max_iters=3, resume=False)
    first.train()
    ckpt = osp.join(tmp_path, 'iter_3.pth')
    assert osp.exists(ckpt)
    saved = torch.load(ckpt, map_location='cpu')  # weights_only default
    assert saved['meta']['iter'] == 3
    # the message hub's HistoryBuffers came back as real objects
    from mmengine.logging import HistoryBuffer
    scalars = saved['message_hub']['log_scalars']
    assert isinstance(scalars['train/loss'], HistoryBuffer)
    assert len(scalars['train/loss'].data[0]) == 3
    assert float(scalars['train/loss'].current()) > 0

    second = _runner(tmp_path, max_iters=5, resume=True)
    second.load_or_resume()
    assert second.iter == 3
    for key, value in saved['state_dict'].items():
        torch.testing.assert_close(second.model.state_dict()[key], value)
    opt_state = second.optim_wrapper.optimizer.state_dict()['state']
    saved_opt = saved['optimizer']['state']
    assert opt_state.keys() == saved_opt.keys() and len(opt_state) == 2
    for idx in saved_opt:
        assert int(opt_state[idx]['step']) == 3
        torch.testing.assert_close(opt_state[idx]['exp_avg'],
                                   saved_opt[idx]['exp_avg'])
    second.train()
    assert second.iter == 5
    assert osp.exists(osp.join(tmp_path, 'iter_5.pth'))


class _Payload:
    """An object whose unpickling runs code (writes a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


class _GetattrPayload:
    """Asks the unpickler for ``getattr(<tensor>, 'numpy')``: only
    HistoryBuffer statistics methods may be fetched that way."""

    def __reduce__(self):
        return (getattr, (torch.zeros(1), 'numpy'))


@pytest.mark.parametrize('payload', ['reduce', 'getattr'])
def test_checkpoint_with_foreign_object_is_refused(tmp_path, payload):
    marker = osp.join(tmp_path, 'pwned')
    obj = _Payload(marker) if payload == 'reduce' else _GetattrPayload()
    path = osp.join(tmp_path, 'evil.pth')
    torch.save(
        dict(state_dict=dict(w=torch.zeros(1)), meta=dict(extra=obj)), path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(nn.Linear(1, 1), path, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location='cpu')
    assert not os.path.exists(marker)
