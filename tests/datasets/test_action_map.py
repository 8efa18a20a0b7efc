# Copyright (c) cmdyseg contributors. All rights reserved.
"""The per-pixel action map: reading it from A2D files, flipping, resizing
and packing it, and the auxiliary head trained on it."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import PixelData
from refer_data_fixtures import (MASK_A0_F9, MASK_A1_F9, MASK_A1_F9_DUP,
                                 MASK_EXTRA, block_mask, write_a2d_h5)

from cmdyseg.datasets.file_io import (ACTION_MAP_IGNORE, DataFileError,
                                      load_a2d_action_map)
from cmdyseg.datasets.transforms import (LoadA2DActionMap, PackReferSegInputs,
                                         ReferFlip)
from cmdyseg.models.heads import ActionSegAuxHead
from cmdyseg.structures import ReferSegDataSample

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('cmdyseg')


def test_action_map_of_the_fixture_frame(a2d_root):
    # vidA frame 9: instance 0 (code 11), instance 1 twice (code 46) and a
    # fourth mask without a code (a glitch of the real files)
    path = osp.join(a2d_root, 'a2d_annotation_with_instances', 'vidA',
                    '00009.h5')
    label = load_a2d_action_map(path)
    assert label.dtype == np.uint8 and label.shape == MASK_A0_F9.shape
    assert (label[MASK_A0_F9 > 0] == 1).all()
    assert (label[(MASK_A1_F9 | MASK_A1_F9_DUP) > 0] == 6).all()
    assert (label[MASK_EXTRA > 0] == ACTION_MAP_IGNORE).all()
    rest = (MASK_A0_F9 | MASK_A1_F9 | MASK_A1_F9_DUP | MASK_EXTRA) == 0
    assert (label[rest] == 0).all()
    # the transform adds it under gt_action_map
    out = LoadA2DActionMap()(dict(mask_path=path))
    np.testing.assert_array_equal(out['gt_action_map'], label)


def test_overlaps_and_codes_without_an_action(tmp_path):
    a, b, c = (block_mask(0, 8, 0, 8), block_mask(4, 12, 4, 12),
               block_mask(20, 24, 0, 48))
    path = str(tmp_path / 'f.h5')
    # a and b overlap with different actions; c's code (30) has no action
    write_a2d_h5(path, [0, 1, 2], [a, b, c], [12, 25, 30])
    label = load_a2d_action_map(path)
    both = (a & b) > 0
    assert both.any() and (label[both] == ACTION_MAP_IGNORE).all()
    assert (label[(a > 0) & ~both] == 2).all()
    assert (label[(b > 0) & ~both] == 5).all()
    assert (label[c > 0] == ACTION_MAP_IGNORE).all()
    # the same action where they overlap is that action
    write_a2d_h5(path, [0, 1], [a, b], [12, 32])
    label = load_a2d_action_map(path)
    assert (label[(a | b) > 0] == 2).all()


def test_missing_file_names_it(tmp_path):
    path = str(tmp_path / 'none.h5')
    with pytest.raises(DataFileError, match='none.h5: mask file does not'):
        load_a2d_action_map(path)


def _flippable():
    label = np.zeros((4, 6), np.uint8)
    label[0, 0] = 1  # moving left, on the left
    label[1, 1] = 2  # moving right
    label[2, 2] = 7  # standing
    label[3, 0] = ACTION_MAP_IGNORE
    return dict(
        imgs=[np.zeros((4, 6, 3), np.uint8)],
        img_shape=(4, 6),
        modality='RGB',
        gt_action_map=label)


def test_flip_mirrors_the_map_and_swaps_the_mirrored_actions():
    r = _flippable()
    orig = r['gt_action_map'].copy()
    out = ReferFlip(flip_ratio=1.0, label_swaps=((1, 2), ))(r)
    want = orig[:, ::-1].copy()
    want[orig[:, ::-1] == 1], want[orig[:, ::-1] == 2] = 2, 1
    np.testing.assert_array_equal(out['gt_action_map'], want)
    assert out['gt_action_map'][0, 5] == 2 and out['gt_action_map'][2, 3] == 7
    assert out['gt_action_map'][3, 5] == ACTION_MAP_IGNORE
    # without label_swaps it is only mirrored; without a flip, untouched
    out = ReferFlip(flip_ratio=1.0)(_flippable())
    np.testing.assert_array_equal(out['gt_action_map'], orig[:, ::-1])
    out = ReferFlip(flip_ratio=0.0, label_swaps=((1, 2), ))(_flippable())
    np.testing.assert_array_equal(out['gt_action_map'], orig)


@pytest.mark.parametrize('swaps', [((1, ), ), ((1, 1), ), ((1, 2), (2, 3)),
                                   ((1, 255), ), ((1.0, 2), ), 3, 'ab'])
def test_bad_label_swaps_are_one_line(swaps):
    with pytest.raises(ValueError) as info:
        ReferFlip(label_swaps=swaps)
    assert str(info.value) == (
        'ReferFlip: label_swaps must be (label, mirrored label) pairs of '
        f'distinct ints in [0, 255), got {swaps!r}')


def test_pack_with_action_map():
    r = dict(
        imgs=[np.zeros((4, 6, 3), np.uint8)] * 2,
        img_shape=(4, 6),
        ori_shape=(4, 6),
        gt_mask=np.zeros((4, 6), np.uint8),
        gt_action_map=np.full((4, 6), 3, np.uint8),
        video_id='v',
        frame_id=1,
        instance_id='0',
        sentence='s',
        actor_action=13)
    sample = PackReferSegInputs(with_action_map=True)(dict(r))['data_samples']
    assert sample.gt_action_map.data.shape == (1, 4, 6)
    assert (sample.gt_action_map.data == 3).all()
    assert 'gt_action_map' not in PackReferSegInputs()(
        dict(r))['data_samples']
    del r['gt_action_map']
    with pytest.raises(KeyError, match="'gt_action_map' missing"):
        PackReferSegInputs(with_action_map=True)(r)


def test_synthetic_train_pipeline_loads_flips_and_packs_the_map(tmp_path):
    from cmdyseg.synthetic import generate_synthetic_a2d
    root = str(tmp_path / 'syn')
    generate_synthetic_a2d(root, num_train=6, num_test=2, num_frames=12,
                           height=48, width=64)
    np.random.seed(0)  # ReferFlip draws with numpy
    cfg = Config.fromfile(osp.join(CONFIGS, '_base_', 'datasets',
                                   'synthetic_a2d.py'))
    loader = copy.deepcopy(cfg.train_dataloader)
    loader.update(num_workers=0, persistent_workers=False)
    loader.dataset.data_root = root
    dataset = Runner.build_dataloader(loader).dataset
    actions = cfg.metainfo['actions']
    seen = set()
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        sample = dataset[i]['data_samples']
        label = sample.gt_action_map.data[0].numpy()
        assert label.shape == tuple(sample.img_shape)
        # the referred actor's pixels carry its action (mirrored by a flip)
        action = actions[info['actor_action'] % 10 - 1]
        if sample.flip:
            action = {'moving_left': 'moving_right',
                      'moving_right': 'moving_left'}.get(action, action)
        inside = label[sample.gt_mask.data[0].numpy() > 0]
        inside = inside[inside != ACTION_MAP_IGNORE]
        assert inside.size and (inside == actions.index(action) + 1).all()
        seen.add(bool(sample.flip))
    assert seen == {False, True}


# ------------------------------------------------------------ the head
def _samples(labels):
    out = []
    for label in labels:
        s = ReferSegDataSample(metainfo=dict(sentence='s'))
        s.gt_action_map = PixelData(data=label[None].to(torch.uint8))
        out.append(s)
    return out


def test_aux_head_loss_is_cross_entropy_over_the_counted_pixels():
    torch.manual_seed(0)
    head = ActionSegAuxHead(in_channels=6, num_classes=4, loss_weight=0.5)
    visual = torch.randn(2, 6, 4, 4, requires_grad=True)
    labels = torch.randint(0, 4, (2, 8, 8))
    labels[0, :2] = 255
    losses = head.loss(visual, _samples(labels))
    assert set(losses) == {'loss_ce'}
    up = F.interpolate(head(visual), size=(8, 8), mode='bilinear',
                       align_corners=False)
    want = 0.5 * F.cross_entropy(up, labels, ignore_index=255)
    assert losses['loss_ce'].item() == pytest.approx(want.item(), rel=1e-6)
    losses['loss_ce'].backward()
    assert visual.grad.abs().sum() > 0
    # a batch with no counted pixel gives 0, not NaN
    none = head.loss(visual, _samples(torch.full((2, 8, 8), 255)))
    assert none['loss_ce'].item() == 0
    # a hidden layer, and a list input (an mmseg neck's output)
    head = ActionSegAuxHead(in_channels=6, num_classes=4, channels=5)
    assert head([torch.zeros(1, 3, 2, 2),
                 torch.zeros(1, 6, 3, 3)]).shape == (1, 4, 3, 3)


def test_aux_head_says_what_is_missing_or_wrong():
    head = ActionSegAuxHead(in_channels=6, num_classes=4)
    visual = torch.zeros(1, 6, 4, 4)
    with pytest.raises(KeyError, match='LoadA2DActionMap.*with_action_map'):
        head.loss(visual, [ReferSegDataSample()])
    with pytest.raises(ValueError, match='label 5 but num_classes=4'):
        head.loss(visual, _samples(torch.full((1, 4, 4), 5)))
    with pytest.raises(ValueError, match=r'must be \(B, 6, H, W\)'):
        head(torch.zeros(1, 5, 4, 4))
    for kwargs, message in (
            (dict(num_classes=1), 'num_classes must be an int >= 2'),
            (dict(channels=0), 'channels must be None or a positive int'),
            (dict(ignore_index=3), 'ignore_index=3 must be an int outside'),
            (dict(loss_weight=-1), 'loss_weight=-1 must be a number'),
            (dict(loss_name='ce'), "loss_name='ce' must contain 'loss'")):
        args = dict(in_channels=6, num_classes=4)
        args.update(kwargs)
        with pytest.raises(ValueError, match=message):
            ActionSegAuxHead(**args)
