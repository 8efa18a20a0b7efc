# Copyright (c) cmdyseg contributors. All rights reserved.
"""init_model / inference_model on the tiny config with a random model."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from cmdyseg.apis import (VideoPreprocessor, VideoReadError, VideoSource,
                          check_sentences, inference_model, init_model)
from cmdyseg.structures import ReferSegDataSample
from cmdyseg.utils.checkpoint import CheckpointError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(
    REPO, 'configs', 'cmdyconv',
    'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
# A random model's response maps are nearly flat, so the paper's rule (half
# of the maximum) marks every pixel; logit > 0 gives masks with a shape.
TEST_CFG = {'model.test_cfg': dict(mode='absolute', thr=0.5)}
T, H, W = 5, 50, 70  # odd frame size on purpose
SENTENCES = ['the red circle on the left', 'a blue square moving up']


def write_mp4(path, num_frames=T, height=H, width=W):
    """A red disc moving right on a grey, textured background (BGR)."""
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*'mp4v'), 10, (width, height))
    assert writer.isOpened()
    yy, xx = np.mgrid[:height, :width]
    for t in range(num_frames):
        frame = np.stack([(xx * 3 + t * 20) % 256, (yy * 5) % 256,
                          np.full_like(xx, 90)], -1).astype(np.uint8)
        cv2.circle(frame, (12 + 9 * t, height // 2), 9, (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    return str(path)


def decode_rgb(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return init_model(CONFIG, cfg_options=TEST_CFG)


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    return write_mp4(tmp_path_factory.mktemp('video') / 'clip.mp4')


@pytest.fixture(scope='module')
def shared_results(model, video):
    return inference_model(model, video, SENTENCES, batch_size=T)


def test_init_model_keeps_cfg_and_loads_checkpoint(model, tmp_path):
    assert isinstance(model.cfg, Config)
    assert model.cfg.model.test_cfg.mode == 'absolute'
    assert not model.training
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    torch.manual_seed(1)  # other random weights before loading
    loaded = init_model(CONFIG, str(ckpt), cfg_options=TEST_CFG)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    with pytest.raises(CheckpointError, match='missing.pth'):
        init_model(CONFIG, str(tmp_path / 'missing.pth'))
    # strict loading: a checkpoint of another model is refused
    state = model.state_dict()
    state.pop('head.blocks.0.pointwise.weight')
    torch.save(dict(state_dict=state), tmp_path / 'partial.pth')
    with pytest.raises(RuntimeError, match='head.blocks.0.pointwise.weight'):
        init_model(CONFIG, str(tmp_path / 'partial.pth'))


def test_one_mask_per_frame_and_sentence_at_frame_size(shared_results):
    assert [r['sentence'] for r in shared_results] == SENTENCES
    for result in shared_results:
        masks, scores = result['masks'], result['scores']
        assert masks.shape == (T, H, W) and masks.dtype == np.uint8
        assert set(np.unique(masks)) <= {0, 1}
        assert scores.shape == (T, ) and scores.dtype == np.float32
        # absolute thr 0.5: the mean probability inside a mask is > 0.5
        for t in range(T):
            if masks[t].any():
                assert 0.5 < scores[t] <= 1.0
            else:
                assert scores[t] == 0
    # the masks have a shape (neither empty nor the whole frame)...
    fractions = np.array([r['masks'].mean() for r in shared_results])
    assert ((fractions > 0.01) & (fractions < 0.99)).all(), fractions
    # ...and depend on the sentence
    assert not np.array_equal(shared_results[0]['masks'],
                              shared_results[1]['masks'])


def test_shared_video_pass_equals_one_sentence_at_a_time(
        model, video, shared_results, monkeypatch):
    calls = dict(backbone=0, text=0, head=0)

    def counting(name, module):
        forward = module.forward

        def wrapped(*args, **kwargs):
            calls[name] += 1
            return forward(*args, **kwargs)

        monkeypatch.setattr(module, 'forward', wrapped)

    counting('backbone', model.backbone)
    counting('text', model.text_encoder)
    counting('head', model.head)
    shared = inference_model(model, video, SENTENCES, batch_size=3)
    # 5 frames in windows of 3: 2 video-encoder calls for both sentences,
    # one text-encoder call, one head call per (batch, sentence)
    assert calls == dict(backbone=2, text=1, head=4)
    for sentence, together in zip(SENTENCES, shared):
        alone = inference_model(model, video, sentence, batch_size=3)
        assert isinstance(alone, dict) and alone['sentence'] == sentence
        np.testing.assert_array_equal(alone['masks'], together['masks'])
        np.testing.assert_allclose(alone['scores'], together['scores'],
                                   rtol=1e-5, atol=1e-6)
    # the window batch size does not change the result
    for batched, other in zip(shared_results, shared):
        np.testing.assert_array_equal(batched['masks'], other['masks'])
        np.testing.assert_allclose(batched['scores'], other['scores'],
                                   rtol=1e-4, atol=1e-5)


def _predict_clip(model, frames, inds, sentence):
    """CMDySegmentor.predict on the clip of ``inds``: frames resized to the
    config's 64 x 64 (cv2 bilinear, as mmcv.imresize) and packed."""
    clip = np.stack([
        cv2.resize(frames[i], (64, 64), interpolation=cv2.INTER_LINEAR)
        for i in inds
    ])  # L, 64, 64, 3
    inputs = torch.from_numpy(np.ascontiguousarray(clip.transpose(3, 0, 1,
                                                                  2)))
    sample = ReferSegDataSample(
        metainfo=dict(sentence=sentence, ori_shape=(H, W)))
    with torch.no_grad():
        out = model.test_step(dict(inputs=[inputs], data_samples=[sample]))
    return (out[0].pred_mask.data[0].numpy(), float(out[0].pred_score),
            out[0].seg_logits.data)


def test_border_windows_repeat_the_border_frames(model, video,
                                                 shared_results):
    frames = decode_rgb(video)
    assert len(frames) == T
    clip_len = 8
    sentence = SENTENCES[0]
    result = shared_results[0]
    for t in (0, T - 1, 2):
        # frame t is at position clip_len // 2 = 4 of its clip; positions
        # outside the video repeat frame 0 / frame T - 1
        inds = [min(max(t + k - clip_len // 2, 0), T - 1)
                for k in range(clip_len)]
        mask, score, logits = _predict_clip(model, frames, inds, sentence)
        if t == 0:
            border_logits = logits
        np.testing.assert_array_equal(result['masks'][t], mask)
        assert result['scores'][t] == pytest.approx(score, rel=1e-5)
    assert [min(max(k - 4, 0), T - 1) for k in range(8)] == \
        [0, 0, 0, 0, 0, 1, 2, 3]
    # the comparison can tell clips apart: frame 0 without the repeated
    # border (the first 8 frames, clamped only at the end) responds
    # otherwise: the response maps differ well above float noise
    _, _, other = _predict_clip(model, frames, [0, 1, 2, 3, 4, 4, 4, 4],
                                sentence)
    assert (border_logits - other).abs().max() > 1e-3


def test_folder_of_frames_and_arrays_match_the_video(model, video, tmp_path,
                                                     shared_results):
    frames = decode_rgb(video)
    folder = tmp_path / 'frames'
    folder.mkdir()
    for t, frame in enumerate(frames):
        # 1-based names without padding: natural order, not '10' < '2'
        cv2.imwrite(str(folder / f'{t + 1}.png'),
                    cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (folder / 'notes.txt').write_text('not a frame')
    from_folder = inference_model(model, str(folder), SENTENCES[:1],
                                  batch_size=T)
    from_arrays = inference_model(model, frames, SENTENCES[:1], batch_size=T)
    for got in (from_folder[0], from_arrays[0]):
        np.testing.assert_array_equal(got['masks'],
                                      shared_results[0]['masks'])


def test_video_source_orders_and_checks_frames(tmp_path):
    folder = tmp_path / 'natural'
    folder.mkdir()
    for i in (10, 2, 1):
        img = np.full((6, 8, 3), i, np.uint8)
        cv2.imwrite(str(folder / f'frame_{i}.png'), img)
    source = VideoSource(str(folder))
    assert [int(f[0, 0, 0]) for f in source] == [1, 2, 10]
    assert source.frame_shape == (6, 8) and source.fps == 25.0
    assert source.frame_count_hint == 3

    with pytest.raises(FileNotFoundError, match='nope.mp4'):
        VideoSource(str(tmp_path / 'nope.mp4'))
    bad = tmp_path / 'bad.mp4'
    bad.write_text('this is not a video')
    with pytest.raises(VideoReadError, match='bad.mp4'):
        VideoSource(str(bad))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(VideoReadError, match='no image files'):
        VideoSource(str(empty))
    with pytest.raises(VideoReadError, match='frame 0'):
        VideoSource([np.zeros((4, 4, 3), np.float32)])
    mixed = VideoSource(
        [np.zeros((4, 4, 3), np.uint8),
         np.zeros((4, 5, 3), np.uint8)])
    with pytest.raises(VideoReadError, match='frame 1'):
        list(mixed)


def test_video_source_names_a_corrupt_frame_file(tmp_path):
    """A folder with a corrupt image: one error naming the file, the
    video and the frame, raised when that frame is read."""
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f'{i:05d}.jpg'),
                    np.full((6, 8, 3), 50 * i, np.uint8))
    (folder / '00001.jpg').write_bytes(b'not a jpeg')
    source = VideoSource(str(folder))  # the first frame decodes
    with pytest.raises(VideoReadError) as info:
        list(source)
    message = str(info.value)
    assert message == (f'{folder / "00001.jpg"}: frame 1 of video {folder} '
                       'does not decode (corrupt, truncated or not an image)')
    (folder / '00000.jpg').write_bytes(b'')
    with pytest.raises(VideoReadError,
                       match=r'00000\.jpg: frame 0 of video .*frames does '
                       'not decode'):
        VideoSource(str(folder))


def test_sentences_are_checked(model, video):
    assert check_sentences('a dog') == ['a dog']
    with pytest.raises(ValueError, match='sentence 1 is empty'):
        check_sentences(['a dog', ' ?! '])
    with pytest.raises(ValueError, match='no sentence'):
        check_sentences([])
    with pytest.raises(ValueError, match="'xqzzy blorfle'"):
        check_sentences(['a dog', 'xqzzy blorfle'], model.text_encoder)
    with pytest.raises(ValueError, match='no word known'):
        inference_model(model, video, 'xqzzy blorfle')


def test_preprocessor_reads_clip_and_size_from_the_test_pipeline():
    cfg = Config(
        dict(test_pipeline=[
            dict(type='mmaction.OpenCVInit'),
            dict(type='SampleReferClip', clip_len=4, frame_interval=2),
            dict(type='mmaction.OpenCVDecode'),
            dict(type='mmaction.Resize', scale=(32, 24), keep_ratio=False),
            dict(type='ReferFlip', flip_ratio=0.0),
            dict(type='PackReferSegInputs', with_gt_mask=False),
        ]))
    pre = VideoPreprocessor(cfg)
    assert (pre.clip_len, pre.frame_interval) == (4, 2)
    # key position 2; offsets -4, -2, 0, 2 clamped to [0, 9]
    assert pre.window_indices(0, 10).tolist() == [0, 0, 0, 2]
    assert pre.window_indices(9, 10).tolist() == [5, 7, 9, 9]
    frames = [np.full((H, W, 3), t, np.uint8) for t in range(3)]
    data = pre(frames)
    assert data['frames'].shape == (3, 24, 32, 3)
    assert data['ori_shape'] == (H, W) and data['img_shape'] == (24, 32)
    assert data['frames'][2].max() == 2

    for step, match in ((dict(type='mmaction.CenterCrop', crop_size=8),
                         'CenterCrop'),
                        (dict(type='ReferFlip', flip_ratio=0.5), 'random')):
        bad = Config(dict(test_pipeline=[dict(type='SampleReferClip'), step]))
        with pytest.raises(ValueError, match=match):
            VideoPreprocessor(bad)
    with pytest.raises(ValueError, match='SampleReferClip'):
        VideoPreprocessor(
            Config(
                dict(test_pipeline=[
                    dict(type='mmaction.Resize', scale=(8, 8))
                ])))
