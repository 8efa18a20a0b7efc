# Copyright (c) cmdyseg contributors. All rights reserved.
import os
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import HOOKS, DefaultScope
from mmengine.runner import Runner
from mmengine.structures import PixelData
from torch.utils.data import Dataset

from cmdyseg.engine import ReferSegVisualizationHook
from cmdyseg.engine.hooks import centre_frame
from cmdyseg.structures import ReferSegDataSample
from cmdyseg.visualization import ReferSegVisualizer

CLIP_LEN, h, w = 8, 16, 16  # network input
H, W = 60, 80  # original frame size
KEY_COLOR = (250, 20, 20)  # the annotated (centre) frame
OTHER_COLOR = (20, 20, 250)  # the other frames of the clip


def make_clip() -> torch.Tensor:
    clip = torch.empty(3, CLIP_LEN, h, w, dtype=torch.uint8)
    clip[:] = torch.tensor(OTHER_COLOR, dtype=torch.uint8).view(3, 1, 1, 1)
    clip[:, CLIP_LEN // 2] = torch.tensor(
        KEY_COLOR, dtype=torch.uint8).view(3, 1, 1)
    return clip


def make_sample(index: int) -> ReferSegDataSample:
    sample = ReferSegDataSample(
        metainfo=dict(
            video_id=f'vid/{index}',  # '/' must not make a sub-folder
            frame_id=index + 1,
            instance_id='0',
            sentence=f'the thing number {index}',
            ori_shape=(H, W),
            img_shape=(h, w),
            key_frame_index=CLIP_LEN // 2,
            sample_idx=index))
    gt = np.zeros((1, H, W), np.uint8)
    gt[0, 40:56, 4:30] = 1
    sample.ori_gt_mask = PixelData(data=torch.from_numpy(gt))
    return sample


def predict(sample: ReferSegDataSample) -> ReferSegDataSample:
    pred = np.zeros((1, H, W), np.uint8)
    pred[0, 40:56, 44:70] = 1
    sample.pred_mask = PixelData(data=torch.from_numpy(pred))
    sample.pred_score = torch.tensor(0.9)
    return sample


def check_png(path: str):
    img = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    band = img.shape[0] - H
    assert band > 0 and img.shape[1:] == (2 * W, 3)
    gt_panel, pred_panel = img[band:, :W], img[band:, W:]
    # the frame drawn is the centre frame of the clip, at ori_shape
    assert (gt_panel[H - 1, W - 1] == KEY_COLOR).all()
    assert (pred_panel[H - 1, W - 1] == KEY_COLOR).all()
    # gt tinted in the left panel only, the prediction in the right only
    assert (gt_panel[48, 15] != KEY_COLOR).any()
    assert (pred_panel[48, 15] == KEY_COLOR).all()
    assert (pred_panel[48, 57] != KEY_COLOR).any()
    assert (gt_panel[48, 57] == KEY_COLOR).all()


def test_centre_frame_takes_the_key_frame_at_ori_shape():
    frame = centre_frame(make_clip(), make_sample(0))
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    assert (frame == KEY_COLOR).all()
    sample = make_sample(0)
    sample.set_metainfo(dict(key_frame_index=0))
    assert (centre_frame(make_clip(), sample) == OTHER_COLOR).all()
    with pytest.raises(ValueError, match='clip'):
        centre_frame(torch.zeros(8, 3, 4, 4), sample)


def test_after_test_iter_writes_one_png_per_sample(tmp_path):
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        # what tools/test.py --show-dir adds
        hook = HOOKS.build(
            dict(
                type='ReferSegVisualizationHook',
                draw=True,
                test_out_dir='show'))
    assert isinstance(hook, ReferSegVisualizationHook)
    runner = SimpleNamespace(work_dir=str(tmp_path), visualizer=None, iter=0)
    hook.before_test(runner)
    for batch_idx in range(2):
        samples = [make_sample(2 * batch_idx + i) for i in range(2)]
        batch = dict(
            inputs=[make_clip() for _ in samples], data_samples=samples)
        hook.after_test_iter(runner, batch_idx, batch,
                             [predict(s) for s in samples])
    out_dir = tmp_path / 'show'
    names = sorted(os.listdir(out_dir))
    assert names == [
        f'{i:06d}_vid-{i}_f{i + 1:05d}_i0.png' for i in range(4)
    ]
    for name in names:
        check_png(str(out_dir / name))


def test_draw_off_and_interval(tmp_path):
    runner = SimpleNamespace(work_dir=str(tmp_path), visualizer=None, iter=0)
    samples = [predict(make_sample(0))]
    batch = dict(inputs=[make_clip()], data_samples=samples)
    ReferSegVisualizationHook(draw=False, test_out_dir='off').after_test_iter(
        runner, 0, batch, samples)
    assert not osp.exists(tmp_path / 'off')
    hook = ReferSegVisualizationHook(
        draw=True, interval=2, test_out_dir=str(tmp_path / 'abs'))
    for batch_idx in range(4):
        hook.after_test_iter(runner, batch_idx, batch,
                             [predict(make_sample(batch_idx))])
    # batches 1 and 3 (every 2nd); an absolute test_out_dir is kept as is
    assert sorted(os.listdir(tmp_path / 'abs')) == [
        '000001_vid-1_f00002_i0.png', '000003_vid-3_f00004_i0.png'
    ]
    with pytest.raises(ValueError, match='interval'):
        ReferSegVisualizationHook(interval=0)
    with pytest.raises(ValueError, match='test_out_dir'):
        ReferSegVisualizationHook(draw=True).after_test_iter(
            runner, 0, batch, samples)


def test_runner_visualizer_is_used_when_it_is_a_refer_seg_one(tmp_path):
    visualizer = ReferSegVisualizer(name='hook_test_visualizer')
    runner = SimpleNamespace(
        work_dir=str(tmp_path), visualizer=visualizer, iter=0)
    hook = ReferSegVisualizationHook(draw=True, test_out_dir='show')
    samples = [predict(make_sample(5))]
    hook.after_test_iter(runner, 0, dict(inputs=[make_clip()]), samples)
    png = tmp_path / 'show' / '000005_vid-5_f00006_i0.png'
    check_png(str(png))
    drawn = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(visualizer.get_image(), drawn)


class ToyClips(Dataset):
    """Packed samples as a cmdyseg test pipeline gives them."""

    def __len__(self):
        return 3

    def __getitem__(self, index):
        return dict(inputs=make_clip(), data_samples=make_sample(index))


class CopyGtModel(BaseModel):
    """Predicts a fixed box; stands in for CMDySegmentor."""

    def __init__(self):
        super().__init__()
        self.param = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        assert mode == 'predict'
        return [predict(s) for s in data_samples]


class CountMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(data_samples)

    def compute_metrics(self, results):
        return dict(count=len(results))


def test_runner_test_writes_pngs_through_the_config_hook(tmp_path):
    runner = Runner(
        model=CopyGtModel(),
        work_dir=str(tmp_path),
        test_dataloader=dict(
            dataset=ToyClips(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate'),
            batch_size=2,
            num_workers=0),
        test_cfg=dict(type='TestLoop'),
        test_evaluator=[CountMetric()],
        default_hooks=dict(
            visualization=dict(
                type='ReferSegVisualizationHook',
                draw=True,
                test_out_dir='show')),
        default_scope='cmdyseg',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING')
    metrics = runner.test()
    assert metrics['count'] == 3
    names = sorted(os.listdir(tmp_path / 'show'))
    assert names == [
        f'{i:06d}_vid-{i}_f{i + 1:05d}_i0.png' for i in range(3)
    ]
    for name in names:
        check_png(str(tmp_path / 'show' / name))
