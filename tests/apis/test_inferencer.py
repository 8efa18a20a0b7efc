# Copyright (c) cmdyseg contributors. All rights reserved.
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from cmdyseg.apis import ReferSegInferencer, inference_model, init_model
from cmdyseg.registry import INFERENCERS
from cmdyseg.structures import ReferSegDataSample

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(
    REPO, 'configs', 'cmdyconv',
    'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
TEST_CFG = {'model.test_cfg': dict(mode='absolute', thr=0.5)}
T, H, W = 3, 36, 44


def make_frames(seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    frames = []
    for t in range(T):
        frame = np.roll(base, 3 * t, axis=1).copy()
        cv2.rectangle(frame, (4 + 5 * t, 8), (16 + 5 * t, 24), (255, 0, 0),
                      -1)
        frames.append(frame)
    return frames


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = init_model(CONFIG, cfg_options=TEST_CFG)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path), model


def test_inferencer_through_the_registry_matches_inference_model(
        checkpoint, tmp_path):
    path, model = checkpoint
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        inferencer = INFERENCERS.build(
            dict(
                type='ReferSegInferencer',
                model=CONFIG,
                weights=path,
                device='cpu'))
    assert isinstance(inferencer, ReferSegInferencer)
    # the config's test_cfg is the file's: set the test one on both
    inferencer.model.test_cfg = dict(model.test_cfg)
    videos = [make_frames(0), make_frames(1)]
    sentences = ['the red box', 'a man walking']
    out = inferencer(
        videos,
        sentences=sentences,
        batch_size=2,
        return_vis=True,
        vis_out_dir=str(tmp_path / 'vis'))
    preds = out['predictions']
    assert len(preds) == 2
    for frames, pred in zip(videos, preds):
        assert pred['num_frames'] == T and pred['ori_shape'] == (H, W)
        expected = inference_model(model, frames, sentences, batch_size=T)
        for got, want in zip(pred['results'], expected):
            assert got['sentence'] == want['sentence']
            assert got['masks'].shape == (T, H, W)
            np.testing.assert_array_equal(got['masks'], want['masks'])
            np.testing.assert_allclose(
                got['scores'], want['scores'], rtol=1e-4, atol=1e-5)
    assert [v.shape for v in out['visualization']] == [(T, H, W, 3)] * 2
    # the overlay differs from the frame where a mask is
    first_mask = preds[0]['results'][0]['masks'][0].astype(bool)
    assert first_mask.any()
    diff = (out['visualization'][0][0] != videos[0][0]).any(-1)
    assert diff[first_mask].mean() > 0.9
    written = sorted((tmp_path / 'vis' / 'video_1').iterdir())
    assert [p.name for p in written] == [f'{t:05d}.png' for t in range(T)]

    # as data samples: per video, per sentence, one sample per frame
    samples = inferencer.postprocess(
        preds, None, return_datasample=True)['predictions']
    assert [len(s) for s in samples] == [2, 2]
    frames_of_sentence = samples[0][1]
    assert len(frames_of_sentence) == T
    sample = frames_of_sentence[2]
    assert isinstance(sample, ReferSegDataSample)
    assert sample.frame_id == 3 and sample.sentence == 'a man walking'
    assert tuple(sample.pred_mask.data.shape) == (1, H, W)
    np.testing.assert_array_equal(sample.pred_mask.data[0].numpy(),
                                  preds[0]['results'][1]['masks'][2])
    assert float(sample.pred_score) == pytest.approx(
        float(preds[0]['results'][1]['scores'][2]))

    with pytest.raises(ValueError, match='sentences'):
        inferencer(videos[0])


def test_inferencer_passes_share_frames_on(tmp_path):
    """share_frames reaches segment_frames: with it off the main job's
    model (2-D encoder) encodes every window and its backbone runs once
    per window; with it on (the default) once for all of them, the masks
    the same."""
    from load_script import load_script
    main_job = load_script(osp.join(REPO, 'tools', 'main_job.py'))
    torch.manual_seed(0)
    model = init_model(osp.join(REPO, main_job.CONFIG), cfg_options=TEST_CFG)
    path = tmp_path / 'main.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    inferencer = ReferSegInferencer(
        osp.join(REPO, main_job.CONFIG), weights=str(path), device='cpu')
    inferencer.model.test_cfg = dict(model.test_cfg)
    calls = []
    handle = inferencer.model.backbone.register_forward_hook(
        lambda *args: calls.append(1))
    try:
        masks = {}
        for share in (False, True):
            calls.clear()
            out = inferencer(make_frames(0), sentences='the red box',
                             batch_size=1, share_frames=share)
            masks[share] = out['predictions'][0]['results'][0]['masks']
            # per window: T module calls; shared: forward_windows, no call
            assert len(calls) == (0 if share else T)
    finally:
        handle.remove()
    np.testing.assert_array_equal(masks[True], masks[False])
