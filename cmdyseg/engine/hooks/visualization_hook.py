# Copyright (c) cmdyseg contributors. All rights reserved.
import os.path as osp
import re
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from cmdyseg.registry import HOOKS
from cmdyseg.structures import ReferSegDataSample
from cmdyseg.visualization import ReferSegVisualizer

_UNSAFE = re.compile(r'[^A-Za-z0-9._-]+')


def centre_frame(clip, data_sample: ReferSegDataSample) -> np.ndarray:
    """The annotated frame of a packed clip, at the original frame size.

    Args:
        clip (Tensor | np.ndarray): ``(3, T, h, w)`` uint8 RGB, as
            ``PackReferSegInputs`` packs it (before normalisation).
        data_sample (ReferSegDataSample): Gives ``key_frame_index``
            (default ``T // 2``, where ``SampleReferClip`` puts the
            annotated frame) and ``ori_shape``.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8 RGB, the network-input frame resized
        (bilinear) to ``ori_shape``: the image the predicted and gt masks
        (both at ``ori_shape``) are drawn on. Finer detail than the input
        size is not recovered.
    """
    if isinstance(clip, torch.Tensor):
        clip = clip.detach().cpu().numpy()
    clip = np.asarray(clip)
    if clip.ndim != 4 or clip.shape[0] != 3:
        raise ValueError(f'expected a (3, T, h, w) clip, got {clip.shape}')
    key = int(data_sample.metainfo.get('key_frame_index', clip.shape[1] // 2))
    frame = np.ascontiguousarray(clip[:, key].transpose(1, 2, 0))
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    H, W = (int(s) for s in data_sample.metainfo.get(
        'ori_shape', frame.shape[:2])[:2])
    if frame.shape[:2] != (H, W):
        frame = cv2.resize(frame, (W, H), interpolation=cv2.INTER_LINEAR)
    return frame


def sample_name(data_sample: ReferSegDataSample, fallback: int) -> str:
    """A file-name-safe, unique name of a test sample:
    ``<sample_idx>_<video_id>_f<frame_id>_i<instance_id>``; ``fallback``
    (the running sample number) stands in for a missing ``sample_idx``."""
    meta = data_sample.metainfo
    index = meta.get('sample_idx', fallback)
    parts = [f'{int(index):06d}', str(meta.get('video_id', 'video'))]
    if 'frame_id' in meta:
        parts.append(f'f{int(meta["frame_id"]):05d}')
    if 'instance_id' in meta:
        parts.append(f'i{meta["instance_id"]}')
    return _UNSAFE.sub('-', '_'.join(parts))


@HOOKS.register_module()
class ReferSegVisualizationHook(Hook):
    """Draw ground truth and predictions of test / validation samples.

    - Test: with ``draw=True``, every sample of every ``interval``-th batch
      is written to ``test_out_dir`` as ``<sample name>.png`` (see
      :func:`sample_name`): the annotated frame with the gt mask (left) and
      the predicted mask (right), the sentence above
      (:meth:`ReferSegVisualizer.draw_sample`).
    - Validation: with ``draw=True``, the first sample of every
      ``interval``-th batch goes to the visualizer's vis backends (named
      ``val_<sample name>``, step = the training iteration).

    The frame is taken from the batch inputs, the un-normalised uint8 clip
    that the data loader gives (``data_batch['inputs'][i]``, ``(3, T, h,
    w)``), at ``key_frame_index`` (``T // 2``), resized to ``ori_shape``
    (:func:`centre_frame`). So no file is read again and any dataset works;
    the picture has the detail of the network input.

    The runner's visualizer is used if it is a :class:`ReferSegVisualizer`
    (config ``visualizer = dict(type='ReferSegVisualizer', ...)``); with
    any other, the hook draws with a private one (its own colours), writes
    the test PNGs itself and sends validation images to the runner's vis
    backends.

    Args:
        draw (bool): Draw anything at all. Defaults to False (so that
            the hook can sit in a config and be switched on by
            ``tools/test.py --show-dir``).
        interval (int): Draw every ``interval``-th batch. Defaults to 1.
        test_out_dir (str, optional): Folder of the test PNGs; a relative
            path is taken under ``runner.work_dir``. Required for drawing
            during test.
    """

    priority = 'NORMAL'

    def __init__(self,
                 draw: bool = False,
                 interval: int = 1,
                 test_out_dir: Optional[str] = None):
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.draw = draw
        self.interval = interval
        self.test_out_dir = test_out_dir
        self._test_index = 0
        self._own_visualizer: Optional[ReferSegVisualizer] = None

    def _visualizer(self, runner: Runner) -> ReferSegVisualizer:
        visualizer = getattr(runner, 'visualizer', None)
        if isinstance(visualizer, ReferSegVisualizer):
            return visualizer
        if self._own_visualizer is None:
            # constructed directly (not get_instance): the runner's stays the
            # current instance
            self._own_visualizer = ReferSegVisualizer(
                name=f'refer_seg_vis_hook_{id(self)}')
        return self._own_visualizer

    def _out_dir(self, runner: Runner) -> str:
        if self.test_out_dir is None:
            raise ValueError('ReferSegVisualizationHook(draw=True) needs '
                             'test_out_dir to write test images')
        return osp.join(runner.work_dir, self.test_out_dir)

    def before_test(self, runner: Runner) -> None:
        self._test_index = 0

    def after_test_iter(self,
                        runner: Runner,
                        batch_idx: int,
                        data_batch: dict = None,
                        outputs: Optional[Sequence] = None) -> None:
        """Write one PNG per sample of the batch (see the class doc)."""
        samples = list(outputs or [])
        first = self._test_index
        self._test_index += len(samples)
        if not self.draw or not self.every_n_inner_iters(
                batch_idx, self.interval):
            return
        out_dir = self._out_dir(runner)
        visualizer = self._visualizer(runner)
        inputs = data_batch['inputs']
        for i, sample in enumerate(samples):
            frame = centre_frame(inputs[i], sample)
            name = sample_name(sample, first + i)
            visualizer.add_datasample(
                name,
                frame,
                sample,
                out_file=osp.join(out_dir, f'{name}.png'))

    def after_val_iter(self,
                       runner: Runner,
                       batch_idx: int,
                       data_batch: dict = None,
                       outputs: Optional[Sequence] = None) -> None:
        """Send the first sample of the batch to the vis backends."""
        if not self.draw or not outputs or not self.every_n_inner_iters(
                batch_idx, self.interval):
            return
        sample = outputs[0]
        frame = centre_frame(data_batch['inputs'][0], sample)
        visualizer = self._visualizer(runner)
        drawn = visualizer.draw_sample(frame, sample)
        name = 'val_' + sample_name(sample, batch_idx)
        if visualizer is getattr(runner, 'visualizer', None):
            visualizer.add_image(name, drawn, step=runner.iter)
        elif getattr(runner, 'visualizer', None) is not None:
            runner.visualizer.add_image(name, drawn, step=runner.iter)
