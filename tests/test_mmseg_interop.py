# Copyright (c) cmdyseg contributors. All rights reserved.
"""cmdyseg's heads inside other OpenMMLab projects, as their users write
it: the runnable mmseg example of docs/ (``custom_imports`` in a config of
mmseg's scope, ``type='cmdyseg.DCMDyConvHead'``, mmseg's data samples with
``gt_sem_seg``, mmengine's Runner), and the same head built from
mmaction2's scope.

mmsegmentation 1.2.2 is installed by ``tools/setup_env.sh --dev`` (pure
Python, ``--no-deps``; see requirements/tests.txt)."""
import os.path as osp

import torch
from load_script import load_script
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
EXAMPLE = osp.join(REPO, 'docs', 'examples', 'mmseg_referring_head.py')


def _example():
    return load_script(EXAMPLE, 'mmseg_referring_head')


def test_head_trains_in_mmseg_runner(tmp_path):
    example = _example()
    runner = example.build_runner(str(tmp_path), max_iters=40)
    model = runner.model
    assert type(model.decode_head).__module__ == \
        'cmdyseg.models.heads.cmdyconv_head'
    assert [type(loss).__name__ for loss in model.decode_head.loss_decode] \
        == ['WeightedBCELoss', 'DiceLoss']
    runner.train()
    (recorder, ) = [h for h in runner.hooks
                    if isinstance(h, example.RecordLosses)]
    # every iteration went through the head's own loss, both entries
    assert model.loss_calls == 40 and len(recorder.losses) == 40
    assert {'loss_mask', 'loss_dice'} <= set(recorder.losses[0])
    first = sum(x['loss_mask'] for x in recorder.losses[:5]) / 5
    last = sum(x['loss_mask'] for x in recorder.losses[-5:]) / 5
    assert last < 0.7 * first, recorder.losses
    # the trained head segments what each sentence refers to
    ious = example.referred_iou(model)
    assert min(ious) > 0.3, ious


def test_head_builds_from_mmaction_scope():
    from mmaction.registry import MODELS as MMACTION_MODELS
    init_default_scope('mmaction')
    head = MMACTION_MODELS.build(
        dict(type='cmdyseg.CMDyConvHead', in_channels=16, text_channels=8,
             groups=4, num_modules=2))
    assert type(head.loss_decode[0]).__name__ == 'WeightedBCELoss'
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.ones(1, 8, 8, dtype=torch.long))
    losses = head.loss(torch.randn(1, 16, 4, 4), torch.randn(1, 8), [sample])
    assert losses['loss_mask'].item() > 0
    (pred, ) = head.predict(torch.randn(1, 16, 4, 4), torch.randn(1, 8),
                            [dict(ori_shape=(6, 6))])
    assert pred['pred_mask'].shape == (1, 6, 6)
