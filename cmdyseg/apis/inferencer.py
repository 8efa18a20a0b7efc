# Copyright (c) cmdyseg contributors. All rights reserved.
import os
import os.path as osp
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.infer import BaseInferencer
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from cmdyseg.registry import INFERENCERS
from cmdyseg.structures import ReferSegDataSample
from cmdyseg.visualization import (ReferSegVisualizer, draw_refer_overlay,
                                   imwrite_atomic)
from .inference import (VideoPreprocessor, check_sentences, init_model,
                        segment_frames)
from .video import VideoSource, is_single_video


def _video_stem(video, index: int) -> str:
    if isinstance(video, (str, os.PathLike)):
        path = os.fspath(video).rstrip('/\\')
        return osp.splitext(osp.basename(path))[0] or f'video_{index}'
    return f'video_{index}'


@INFERENCERS.register_module()
class ReferSegInferencer(BaseInferencer):
    """mmengine inferencer for referring video segmentation.

    The same computation as :func:`cmdyseg.apis.inference_model`, split in
    mmengine's steps:

    - :meth:`preprocess`: read each video and resize its frames as the
      config's test pipeline does (:class:`VideoPreprocessor`); check the
      sentences;
    - :meth:`forward`: one video per call, sliding clip windows, video
      encoder once per window, text encoder once per sentence
      (:func:`segment_frames`); ``batch_size`` is the number of windows per
      video-encoder call;
    - :meth:`visualize`: the frames with every sentence's mask
      (:func:`draw_refer_overlay`), returned, shown or written as PNGs;
    - :meth:`postprocess`: ``dict(predictions, visualization)``.

    Example:
        >>> inferencer = ReferSegInferencer(CONFIG, weights=CKPT)
        >>> out = inferencer('clip.mp4', sentences=['a dog running'])
        >>> out['predictions'][0]['results'][0]['masks'].shape  # (T, H, W)

    Args:
        model (str | Config | dict): Config path or object.
        weights (str, optional): Checkpoint (see :func:`init_model`).
        device (str, optional): Device; the available one by default.
        scope (str): Registry scope. Defaults to 'cmdyseg'.
        show_progress (bool): Progress bar over the videos. Defaults to
            False.
    """

    preprocess_kwargs: set = {'sentences', 'fps'}
    forward_kwargs: set = {'window_stride', 'interpolate', 'share_frames'}
    visualize_kwargs: set = {'return_vis', 'show', 'wait_time', 'vis_out_dir'}
    postprocess_kwargs: set = set()

    def __init__(self,
                 model: Union[str, Config, ConfigDict, dict],
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 scope: str = 'cmdyseg',
                 show_progress: bool = False) -> None:
        init_default_scope(scope)
        super().__init__(
            model=model,
            weights=weights,
            device=device,
            scope=scope,
            show_progress=show_progress)

    def _init_model(self, cfg, weights: Optional[str],
                    device: str = 'cpu') -> torch.nn.Module:
        if not cfg:
            raise ValueError('ReferSegInferencer needs a config (model=)')
        if not isinstance(cfg, Config):
            cfg = Config(cfg_dict=dict(cfg))
        return init_model(cfg, weights, device)

    def _init_pipeline(self, cfg) -> VideoPreprocessor:
        return VideoPreprocessor(self.model.cfg)

    def _init_collate(self, cfg):
        # videos are not collated: preprocess yields one video at a time
        return pseudo_collate

    def _init_visualizer(self, cfg) -> ReferSegVisualizer:
        # built directly, not through get_instance: it does not replace the
        # current (e.g. a Runner's) visualizer
        return ReferSegVisualizer(
            name=f'refer_seg_inferencer-{datetime.now().timestamp()}')

    def _inputs_to_list(self, inputs) -> list:
        """One video (a path, a 4-D array, a list of frame arrays) or a
        list of videos -> a list of videos. A folder is one video (its
        frames), unlike mmengine's default."""
        if is_single_video(inputs):
            return [inputs]
        return list(inputs)

    def __call__(self,
                 inputs,
                 return_datasamples: bool = False,
                 batch_size: int = 4,
                 **kwargs) -> dict:
        """Segment ``sentences=...`` in each video of ``inputs``.

        Args:
            inputs: A video or a list of videos.
            return_datasamples (bool): Predictions as data samples (see
                :meth:`postprocess`).
            batch_size (int): Clip windows per video-encoder call.
            **kwargs: ``sentences`` (required), ``fps``,
                ``window_stride`` (1: exact; k > 1: the fast mode of
                :func:`segment_frames`), ``interpolate`` (``'features'``,
                ``'responses'`` or ``'deep'``, what the fast mode
                interpolates), ``share_frames`` (default True: each
                frame's backbone maps once where the model allows it,
                exact), ``return_vis``, ``show``,
                ``wait_time``, ``vis_out_dir``.
        """
        return super().__call__(
            inputs,
            return_datasamples=return_datasamples,
            batch_size=batch_size,
            **kwargs)

    def preprocess(self,
                   inputs: list,
                   batch_size: int = 4,
                   sentences: Union[str, Sequence[str], None] = None,
                   fps: Optional[float] = None):
        """Yield one dict per video: the resized ``frames`` ``(T, h, w,
        3)``, ``ori_shape``, ``fps``, ``name``, ``sentences`` and
        ``batch_size``."""
        if sentences is None:
            raise ValueError('ReferSegInferencer needs sentences=...')
        sentences = check_sentences(sentences, self.model.text_encoder)
        for video in inputs:
            data = self.pipeline(video, fps=fps)
            data.update(sentences=sentences, batch_size=batch_size)
            yield data

    @torch.no_grad()
    def forward(self,
                inputs: Dict,
                window_stride: int = 1,
                interpolate: str = 'features',
                share_frames: bool = True,
                **kwargs) -> List[Dict]:
        """Segment one preprocessed video (``window_stride``,
        ``interpolate``, ``share_frames``: see :func:`segment_frames`).

        Returns:
            list[dict]: One dict: ``name``, ``num_frames``, ``ori_shape``,
            ``fps`` and ``results`` (per sentence ``dict(sentence, masks
            (T, H, W) uint8, scores (T,) float32)``).
        """
        results = segment_frames(
            self.model,
            inputs['frames'],
            inputs['ori_shape'],
            inputs['sentences'],
            self.pipeline,
            inputs['batch_size'],
            window_stride=window_stride,
            interpolate=interpolate,
            share_frames=share_frames)
        return [
            dict(
                name=inputs['name'],
                num_frames=int(inputs['frames'].shape[0]),
                ori_shape=tuple(inputs['ori_shape']),
                fps=inputs['fps'],
                results=results)
        ]

    def visualize(self,
                  inputs: list,
                  preds: List[Dict],
                  return_vis: bool = False,
                  show: bool = False,
                  wait_time: float = 0,
                  vis_out_dir: str = '') -> Optional[List[np.ndarray]]:
        """Draw every frame with the masks of all sentences.

        The frames are read again from the inputs (they are not kept at
        their original size). With ``vis_out_dir`` the frames are written
        to ``<vis_out_dir>/<video name>/<frame:05d>.png`` (0-based).

        Returns:
            list[np.ndarray] | None: Per video ``(T, H, W, 3)`` uint8 RGB
            when ``return_vis``, else None.
        """
        if not (return_vis or show or vis_out_dir):
            return None
        visualization = []
        for index, (video, pred) in enumerate(zip(inputs, preds)):
            sentences = [r['sentence'] for r in pred['results']]
            drawn_frames = []
            stem = _video_stem(video, index)
            for t, frame in enumerate(VideoSource(video)):
                drawn = draw_refer_overlay(
                    frame, [r['masks'][t] for r in pred['results']],
                    sentences,
                    scores=[r['scores'][t] for r in pred['results']])
                if show:
                    self.visualizer.show(
                        drawn, win_name=stem, wait_time=wait_time)
                if vis_out_dir:
                    imwrite_atomic(
                        osp.join(vis_out_dir, stem, f'{t:05d}.png'), drawn)
                if return_vis:
                    drawn_frames.append(drawn)
            visualization.append(
                np.stack(drawn_frames) if return_vis else None)
        return visualization if return_vis else None

    def postprocess(self,
                    preds: List[Dict],
                    visualization: Optional[List[np.ndarray]],
                    return_datasample: bool = False) -> dict:
        """Pack the results.

        Returns:
            dict: ``predictions``: per video the dict of :meth:`forward`
            (numpy masks and scores), or with ``return_datasample`` a list
            per sentence of one :class:`ReferSegDataSample` per frame
            (``pred_mask`` ``(1, H, W)``, ``pred_score``, metainfo
            ``video_id``, ``frame_id`` (1-based), ``sentence``,
            ``ori_shape``); ``visualization``: from :meth:`visualize`.
        """
        if not return_datasample:
            return dict(predictions=preds, visualization=visualization)
        predictions = []
        for pred in preds:
            per_sentence = []
            for result in pred['results']:
                samples = []
                for t in range(pred['num_frames']):
                    sample = ReferSegDataSample(
                        metainfo=dict(
                            video_id=pred['name'],
                            frame_id=t + 1,
                            sentence=result['sentence'],
                            ori_shape=pred['ori_shape']))
                    sample.pred_mask = PixelData(
                        data=torch.from_numpy(result['masks'][t][None]))
                    sample.pred_score = torch.tensor(
                        float(result['scores'][t]))
                    samples.append(sample)
                per_sentence.append(samples)
            predictions.append(per_sentence)
        return dict(predictions=predictions, visualization=visualization)
