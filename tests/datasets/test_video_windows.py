# Copyright (c) cmdyseg contributors. All rights reserved.
"""clip_indices, SampleVideoWindows and PackReferVideoInputs."""
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from rvos_fixtures import H, W, build_ytvos, frame_indices

from cmdyseg.datasets import RefYouTubeVOSDataset
from cmdyseg.datasets.transforms import (PackReferVideoInputs, SampleReferClip,
                                         SampleVideoWindows, clip_indices)
from cmdyseg.structures import ReferSegDataSample
from cmdyseg.utils.errors import InvalidInputError


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('cmdyseg')


# ------------------------------------------------------------ clip_indices
def test_clip_indices_hand_values():
    # clip_len 4, interval 2: key position 2, offsets -4, -2, 0, 2
    got = clip_indices(np.array([0, 5, 9]), 10, 4, 2)
    assert got.dtype == np.int64 and got.shape == (3, 4)
    assert got.tolist() == [[0, 0, 0, 2], [1, 3, 5, 7], [5, 7, 9, 9]]
    # clip_len 5, interval 1, a 3-frame video: padded at both ends
    assert clip_indices([1], 3, 5, 1).tolist() == [[0, 0, 1, 2, 2]]
    # clip_len 8 (the tiny model): key position 4
    assert clip_indices([0, 10], 11, 8).tolist() == [
        [0, 0, 0, 0, 0, 1, 2, 3],
        [6, 7, 8, 9, 10, 10, 10, 10],
    ]
    # interval 3 on a short video: every position clamped
    assert clip_indices([1], 2, 3, 3).tolist() == [[0, 1, 1]]
    # clip_len 1 is the frame itself; a one-frame video repeats frame 0
    assert clip_indices([0, 3, 6], 7, 1).tolist() == [[0], [3], [6]]
    assert clip_indices([0], 1, 6, 2).tolist() == [[0] * 6]
    # a scalar centre gives one row
    assert clip_indices(2, 5, 3).tolist() == [[1, 2, 3]]


# ----------------------------------------------------- SampleVideoWindows
@pytest.mark.parametrize('clip_len,interval,total', [
    (8, 1, 11),
    (8, 1, 3),  # shorter than a clip
    (5, 2, 9),  # odd clip, interval 2
    (4, 3, 10),
    (1, 1, 4),
    (16, 1, 1),
])
def test_video_windows_are_the_training_clips(clip_len, interval, total):
    windows = SampleVideoWindows(clip_len, interval)
    out = windows.transform(dict(total_frames=total, video_id='v'))
    inds = out['window_inds']
    assert inds.dtype == np.int64 and inds.shape == (total, clip_len)
    assert out['clip_len'] == clip_len and out['frame_interval'] == interval
    sampler = SampleReferClip(clip_len, interval)
    for t in range(total):
        clip = sampler.transform(dict(frame_id=t + 1, total_frames=total))
        np.testing.assert_array_equal(inds[t], clip['frame_inds'])
        # and the centre of row t is frame t
        assert inds[t, clip_len // 2] == t
        assert clip['key_frame_index'] == clip_len // 2


def test_video_windows_hand_rows_and_errors():
    out = SampleVideoWindows(4, 2).transform(dict(total_frames=5))
    assert out['window_inds'].tolist() == [[0, 0, 0, 2], [0, 0, 1, 3],
                                           [0, 0, 2, 4], [0, 1, 3, 4],
                                           [0, 2, 4, 4]]
    assert repr(SampleVideoWindows(4, 2)) == \
        'SampleVideoWindows(clip_len=4, frame_interval=2)'
    for bad in (dict(clip_len=0), dict(clip_len=2.0),
                dict(frame_interval=0), dict(clip_len=True)):
        with pytest.raises(InvalidInputError, match='SampleVideoWindows: '):
            SampleVideoWindows(**bad)
    with pytest.raises(IndexError, match="video 'empty' has no frame"):
        SampleVideoWindows(4).transform(
            dict(total_frames=0, video_id='empty'))


# ---------------------------------------------------- PackReferVideoInputs
def _video_results(T=5, h=6, w=7, clip_len=4):
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(T)]
    exps = [
        dict(exp_id='0', sentence='a cat', obj_ids=[1], mask_ids=['1']),
        dict(exp_id='3', sentence='the dog', obj_ids=[2], mask_ids=['2']),
    ]
    rles = {'1': ['rle-1'] * T, '2': ['rle-2'] * T}
    results = dict(
        video_id='vid',
        frame_names=[f'{5 * t:05d}.jpg' for t in range(T)],
        expressions=exps,
        imgs=imgs,
        img_shape=(h, w),
        original_shape=(2 * h, 2 * w),
        total_frames=T,
        has_gt=True,
        gt_object_rles=rles)
    return SampleVideoWindows(clip_len).transform(results)


def test_pack_video_inputs_shapes_and_metainfo():
    results = _video_results()
    imgs = np.stack(results['imgs'])
    packed = PackReferVideoInputs().transform(dict(results))
    assert set(packed) == {'inputs', 'data_samples'}
    inputs, sample = packed['inputs'], packed['data_samples']
    assert isinstance(inputs, torch.Tensor)
    assert inputs.dtype == torch.uint8 and tuple(inputs.shape) == (5, 6, 7, 3)
    np.testing.assert_array_equal(inputs.numpy(), imgs)
    assert isinstance(sample, ReferSegDataSample)
    meta = sample.metainfo
    assert set(meta) == {
        'video_id', 'frame_names', 'ori_shape', 'img_shape', 'expressions',
        'window_inds', 'has_gt', 'gt_object_rles'
    }
    assert meta['video_id'] == 'vid'
    assert meta['frame_names'] == [
        '00000.jpg', '00005.jpg', '00010.jpg', '00015.jpg', '00020.jpg'
    ]
    # ori_shape from mmaction2's original_shape, as ints
    assert meta['ori_shape'] == (12, 14) and meta['img_shape'] == (6, 7)
    assert [e['exp_id'] for e in meta['expressions']] == ['0', '3']
    assert meta['window_inds'].tolist() == clip_indices(
        np.arange(5), 5, 4).tolist()
    assert meta['has_gt'] is True
    assert meta['gt_object_rles'] == results['gt_object_rles']

    # an explicit ori_shape wins; no masks -> has_gt False, rles None
    results = _video_results()
    results.update(ori_shape=np.array([20, 30]))
    del results['has_gt'], results['gt_object_rles']
    meta = PackReferVideoInputs().transform(results)['data_samples'].metainfo
    assert meta['ori_shape'] == (20, 30)
    assert all(type(s) is int for s in meta['ori_shape'])
    assert meta['has_gt'] is False and meta['gt_object_rles'] is None


def test_pack_video_inputs_errors():
    results = _video_results()
    del results['window_inds']
    with pytest.raises(KeyError) as info:
        PackReferVideoInputs().transform(results)
    message = info.value.args[0]
    assert '\n' not in message
    assert message == (
        "PackReferVideoInputs: keys ['window_inds'] missing from the "
        "results of video 'vid' (a video pipeline loads the frames, "
        'SampleVideoWindows adds window_inds)')

    results = _video_results()
    del results['original_shape']
    with pytest.raises(KeyError, match=r"\['ori_shape'\] missing"):
        PackReferVideoInputs().transform(results)

    results = _video_results(T=5)
    results['window_inds'] = results['window_inds'][:4]
    with pytest.raises(ValueError,
                       match="video 'vid': 5 frames but 4 windows"):
        PackReferVideoInputs().transform(results)


def test_video_pipeline_on_a_ref_youtube_vos_layout(tmp_path):
    """The dataset's video samples through LoadListedFrames,
    SampleVideoWindows, LoadVideoObjectMasks and PackReferVideoInputs."""
    fx = build_ytvos(tmp_path / 'ytvos')
    ds = RefYouTubeVOSDataset(
        fx.root,
        split='train',
        sample_mode='video',
        pipeline=[
            dict(type='LoadListedFrames'),
            dict(type='SampleVideoWindows', clip_len=4),
            dict(type='LoadVideoObjectMasks'),
            dict(type='PackReferVideoInputs'),
        ])
    videos = {}
    for i in range(len(ds)):
        packed = ds[i]
        videos[packed['data_samples'].video_id] = packed
    assert sorted(videos) == ['vidA', 'vidB']
    packed = videos['vidA']
    meta = packed['data_samples'].metainfo
    assert tuple(packed['inputs'].shape) == (3, H, W, 3)
    # every listed frame, in order (the fixture's frames tell their index)
    assert frame_indices(list(packed['inputs'].numpy())) == [0, 1, 2]
    assert meta['frame_names'] == ['00000.jpg', '00005.jpg', '00010.jpg']
    assert meta['ori_shape'] == (H, W) and meta['img_shape'] == (H, W)
    assert meta['window_inds'].tolist() == [[0, 0, 0, 1], [0, 0, 1, 2],
                                            [0, 1, 2, 2]]
    assert [(e['exp_id'], e['mask_ids']) for e in meta['expressions']] == [
        ('0', ['1']), ('1', ['2'])
    ]
    assert meta['has_gt'] is True
    assert sorted(meta['gt_object_rles']) == ['1', '2']
    from pycocotools import mask as mask_utils
    for obj in (1, 2):
        decoded = np.stack([
            mask_utils.decode(r) for r in meta['gt_object_rles'][str(obj)]
        ])
        np.testing.assert_array_equal(decoded, fx.object_masks('vidA', [obj]))
