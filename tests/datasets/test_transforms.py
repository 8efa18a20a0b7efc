# Copyright (c) cmdyseg contributors. All rights reserved.
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from refer_data_fixtures import MASK_A0_F2, code_to_index

from cmdyseg.datasets.transforms import (PackReferSegInputs, ReferFlip,
                                         ResizeMask, SampleReferClip,
                                         swap_left_right)
from cmdyseg.registry import TRANSFORMS
from cmdyseg.structures import ReferSegDataSample

CONFIGS = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets')


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('cmdyseg')


def test_sample_clip_indices():
    t = SampleReferClip(clip_len=16)
    r = t(dict(frame_id=10, total_frames=40))
    assert r['frame_inds'].tolist() == list(range(1, 17))
    assert r['frame_inds'][r['key_frame_index']] == 9  # 0-based frame 10
    r = t(dict(frame_id=1, total_frames=5))
    assert r['frame_inds'].tolist() == [0] * 9 + [1, 2, 3, 4, 4, 4, 4]
    r = SampleReferClip(clip_len=4, frame_interval=2)(
        dict(frame_id=5, total_frames=6))
    assert r['frame_inds'].tolist() == [0, 2, 4, 5]
    r = SampleReferClip(clip_len=1)(dict(frame_id=3, total_frames=3))
    assert r['frame_inds'].tolist() == [2]
    with pytest.raises(IndexError, match='frame 7'):
        t(dict(frame_id=7, total_frames=6, video_id='v'))


@pytest.mark.parametrize('text, expected', [
    ('the man on the left', 'the man on the right'),
    ('Left dog chasing the RIGHT one', 'Right dog chasing the LEFT one'),
    ('leftmost car, rightmost bird', 'rightmost car, leftmost bird'),
    ('turning left-hand side', 'turning right-hand side'),
    ('walking leftwards', 'walking rightwards'),
    ('spinning clockwise', 'spinning counterclockwise'),
    ('spinning counter-clockwise', 'spinning clockwise'),
    ('the cleft rock, bereft of rights', 'the cleft rock, bereft of rights'),
    ('left and right', 'right and left'),
])
def test_swap_left_right(text, expected):
    assert swap_left_right(text) == expected
    if 'clockwise' not in text:  # a swap is its own inverse
        assert swap_left_right(expected) == text


def _clip(t=3, h=4, w=6):
    imgs = [np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3) + 10 * i
            for i in range(t)]
    mask = np.zeros((h, w), np.uint8)
    mask[1:3, 0:2] = 1  # left side
    return dict(
        imgs=imgs,
        img_shape=(h, w),
        modality='RGB',
        gt_mask=mask,
        ori_gt_mask=mask.copy(),
        sentence='the dog on the Left')


def test_flip_flips_clip_mask_and_words():
    r = _clip()
    orig = copy.deepcopy(r)
    out = ReferFlip(flip_ratio=1.0)(r)
    assert out['flip'] and out['flip_direction'] == 'horizontal'
    for a, b in zip(out['imgs'], orig['imgs']):
        np.testing.assert_array_equal(a, b[:, ::-1])
    np.testing.assert_array_equal(out['gt_mask'], orig['gt_mask'][:, ::-1])
    np.testing.assert_array_equal(out['ori_gt_mask'],
                                  orig['ori_gt_mask'][:, ::-1])
    assert out['gt_mask'][1:3, 4:6].all() and not out['gt_mask'][:, :4].any()
    assert out['sentence'] == 'the dog on the Right'
    assert out['ori_sentence'] == 'the dog on the Left'

    out = ReferFlip(flip_ratio=0.0)(copy.deepcopy(orig))
    assert not out['flip']
    np.testing.assert_array_equal(out['gt_mask'], orig['gt_mask'])
    assert out['sentence'] == orig['sentence']

    out = ReferFlip(flip_ratio=1.0, swap_words=False)(copy.deepcopy(orig))
    assert out['flip'] and out['sentence'] == orig['sentence']

    # channel-reversed views (as mmaction's OpenCVDecode returns) flip too
    r = _clip()
    r['imgs'] = list(np.stack(r['imgs'])[..., ::-1])
    out = ReferFlip(flip_ratio=1.0)(r)
    np.testing.assert_array_equal(out['imgs'][0],
                                  orig['imgs'][0][:, ::-1, ::-1])


def test_resize_mask_nearest():
    mask = np.zeros((32, 48), np.uint8)
    mask[8:16, 0:12] = 1
    r = ResizeMask()(dict(img_shape=(64, 24), gt_mask=mask, ori_gt_mask=mask))
    assert r['gt_mask'].shape == (64, 24)
    assert set(np.unique(r['gt_mask'])) == {0, 1}
    assert r['gt_mask'][16:32, 0:6].all() and r['gt_mask'].sum() == 16 * 6
    assert r['ori_gt_mask'].shape == (32, 48)
    with pytest.raises(ValueError, match='crop'):
        ResizeMask()(dict(img_shape=(4, 4), gt_mask=mask, crop_bbox=[0] * 4))


def _packable(h=24, w=40, H=32, W=48, t=5):
    return dict(
        imgs=[np.full((h, w, 3), i, np.uint8) for i in range(t)],
        img_shape=(h, w),
        original_shape=(H, W),
        gt_mask=np.ones((h, w), np.uint8),
        ori_gt_mask=np.zeros((H, W), np.uint8),
        video_id='v',
        frame_id=3,
        instance_id='1',
        sentence='a dog',
        actor_action=76,
        flip=False)


def test_pack_shapes_and_meta():
    out = PackReferSegInputs(with_ori_mask=True)(_packable())
    x, s = out['inputs'], out['data_samples']
    assert x.shape == (3, 5, 24, 40) and x.dtype == torch.uint8
    assert x[0, 3].eq(3).all()  # frame order kept, channel first
    assert isinstance(s, ReferSegDataSample)
    assert s.gt_mask.data.shape == (1, 24, 40)
    assert s.gt_mask.data.dtype == torch.uint8
    assert s.ori_gt_mask.data.shape == (1, 32, 48)
    assert s.ori_shape == (32, 48) and s.img_shape == (24, 40)
    assert (s.video_id, s.frame_id, s.instance_id) == ('v', 3, '1')
    assert s.sentence == 'a dog' and s.actor_action == 76
    assert s.flip is False
    out = PackReferSegInputs()(_packable())
    assert 'ori_gt_mask' not in out['data_samples']

    bad = _packable()
    bad['gt_mask'] = np.ones((40, 24), np.uint8)  # transposed
    with pytest.raises(ValueError, match='gt_mask.*img_shape'):
        PackReferSegInputs()(bad)
    bad = _packable()
    del bad['actor_action']
    with pytest.raises(KeyError, match='actor_action'):
        PackReferSegInputs()(bad)
    bad = _packable()
    del bad['gt_mask']
    with pytest.raises(KeyError, match='gt_mask'):
        PackReferSegInputs()(bad)
    r = _packable()
    del r['gt_mask']
    out = PackReferSegInputs(with_gt_mask=False)(r)
    assert 'gt_mask' not in out['data_samples']


def test_registered():
    for name in ('SampleReferClip', 'LoadA2DInstanceMask',
                 'LoadJHMDBPuppetMask', 'ResizeMask', 'ReferFlip',
                 'PackReferSegInputs'):
        assert TRANSFORMS.get(name) is not None, name


def _small(cfg_pipeline, scale=(40, 24)):
    pipeline = copy.deepcopy(cfg_pipeline)
    for t in pipeline:
        if t['type'] == 'mmaction.Resize':
            t['scale'] = scale
    return pipeline


def _loader(cfg, key, data_root):
    loader = copy.deepcopy(cfg[key])
    loader.update(num_workers=0, persistent_workers=False, batch_size=2)
    loader['dataset']['data_root'] = data_root
    loader['dataset']['pipeline'] = _small(loader['dataset']['pipeline'])
    return Runner.build_dataloader(loader)


def test_a2d_config_full_pipeline(a2d_root):
    cfg = Config.fromfile(osp.join(CONFIGS, 'a2d_sentences.py'))
    assert cfg.clip_len == 16 and cfg.img_scale == (512, 512)
    assert cfg.train_dataloader.collate_fn == dict(type='pseudo_collate')
    assert cfg.val_evaluator == dict(type='ReferSegMetric')
    assert cfg.data_root == 'data/a2d_sentences'

    batch = next(iter(_loader(cfg, 'train_dataloader', a2d_root)))
    assert len(batch['inputs']) == 2
    for x, s in zip(batch['inputs'], batch['data_samples']):
        assert x.shape == (3, 16, 24, 40) and x.dtype == torch.uint8
        assert s.gt_mask.data.shape == (1, 24, 40)
        assert 'ori_gt_mask' not in s
        assert s.ori_shape == (32, 48) and s.img_shape == (24, 40)

    loader = _loader(cfg, 'test_dataloader', a2d_root)
    batch = next(iter(loader))
    x, s = batch['inputs'][0], batch['data_samples'][0]
    assert (s.video_id, s.frame_id, s.instance_id) == ('vidB', 3, '0')
    assert s.sentence == 'a ball rolling' and s.actor_action == 54
    assert x.shape == (3, 16, 24, 40)
    # vidB has 6 frames: clip around frame 3 = frames 1,1,1,1,1,1,1,2..6,...
    idx = [code_to_index(x[0, t].float().mean()) for t in range(16)]
    assert idx == [0] * 6 + [0, 1, 2, 3, 4, 5, 5, 5, 5, 5]
    assert s.ori_gt_mask.data.shape == (1, 32, 48)
    assert s.gt_mask.data.shape == (1, 24, 40)


def test_a2d_config_flip(a2d_root):
    cfg = Config.fromfile(osp.join(CONFIGS, 'a2d_sentences.py'))
    pipeline = _small(cfg.train_pipeline)
    for t in pipeline:
        if t['type'] == 'ReferFlip':
            t['flip_ratio'] = 1.0
    from cmdyseg.datasets import A2DSentencesDataset
    ds = A2DSentencesDataset(
        data_root=a2d_root, split='train', pipeline=pipeline)
    s = ds[0]['data_samples']
    assert s.sentence == 'the man on the Right' and s.flip
    plain = A2DSentencesDataset(
        data_root=a2d_root, split='train', pipeline=_small(cfg.test_pipeline))
    p = plain[0]['data_samples']
    np.testing.assert_array_equal(p.ori_gt_mask.data[0].numpy(), MASK_A0_F2)
    np.testing.assert_array_equal(s.gt_mask.data.numpy(),
                                  p.gt_mask.data.numpy()[..., ::-1])


def test_jhmdb_config_full_pipeline(jhmdb_root):
    cfg = Config.fromfile(osp.join(CONFIGS, 'jhmdb_sentences.py'))
    assert cfg.test_evaluator == dict(type='ReferSegMetric')
    assert cfg.data_root == 'data/jhmdb_sentences'
    batch = next(iter(_loader(cfg, 'test_dataloader', jhmdb_root)))
    assert [s.frame_id for s in batch['data_samples']] == [1, 3]
    for x, s in zip(batch['inputs'], batch['data_samples']):
        assert x.shape == (3, 16, 24, 40) and x.dtype == torch.uint8
        assert s.ori_gt_mask.data.shape == (1, 32, 48)
        assert s.gt_mask.data.shape == (1, 24, 40)
        assert s.actor_action == -1


@pytest.mark.parametrize('cfg,message', [
    (dict(type='SampleReferClip', clip_len=0),
     'SampleReferClip: clip_len must be an int >= 1, got 0'),
    (dict(type='SampleReferClip', frame_interval=1.5),
     'SampleReferClip: frame_interval must be an int >= 1, got 1.5'),
    (dict(type='ResizeMask', interpolation='linear'),
     "ResizeMask: interpolation must be one of ('nearest', 'bilinear', "
     "'bicubic', 'area', 'lanczos'), got 'linear'"),
    (dict(type='ResizeMask', keys=[1]),
     'ResizeMask: keys must be a str or a sequence of str, got (1,)'),
    (dict(type='ReferFlip', flip_ratio=2),
     'ReferFlip: flip_ratio must be a number in [0, 1], got 2'),
    (dict(type='ReferFlip', word_pairs=[('left', )]),
     "ReferFlip: word_pairs must be (word, mirrored word) pairs, got "
     "[('left',)]"),
    (dict(type='PackReferSegInputs', meta_keys=None),
     'PackReferSegInputs: meta_keys must be a str or a sequence of str, got '
     'None'),
    (dict(type='LoadJHMDBPuppetMask', key=''),
     "LoadJHMDBPuppetMask: key must be the name of a variable of the .mat "
     "file, got ''"),
])
def test_bad_transform_options_are_one_line_value_errors(cfg, message):
    with pytest.raises(ValueError) as info:
        TRANSFORMS.build(cfg)
    assert str(info.value) == message


def test_one_key_may_be_a_str():
    assert ResizeMask(keys='gt_mask').keys == ('gt_mask', )
    assert PackReferSegInputs(meta_keys='video_id').meta_keys == (
        'video_id', )
