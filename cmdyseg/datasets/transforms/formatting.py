# Copyright (c) cmdyseg contributors. All rights reserved.
"""Packing a clip, its masks and its sentence for the model."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData

from cmdyseg.registry import TRANSFORMS
from cmdyseg.structures import ReferSegDataSample
from cmdyseg.utils.errors import InvalidInputError
from .processing import str_keys


@TRANSFORMS.register_module()
class PackReferSegInputs(BaseTransform):
    """Pack a sample into ``dict(inputs, data_samples)``.

    Output:

    - ``inputs``: ``(3, T, h, w)`` uint8 RGB tensor, T = clip length, (h, w)
      = ``img_shape``. Not normalised: the model's data preprocessor does
      that.
    - ``data_samples``: :class:`ReferSegDataSample` with

      - ``gt_mask``: ``PixelData`` ``data`` ``(1, h, w)`` uint8 (0/1), the
        target at the network input size (``with_gt_mask``);
      - ``ori_gt_mask``: ``(1, H, W)`` uint8 at the original frame size
        (``with_ori_mask``, on in test pipelines);
      - ``gt_action_map``: ``(1, h, w)`` uint8 labels, every actor's action
        (``with_action_map``; see :class:`LoadA2DActionMap`);
      - metainfo ``meta_keys`` (all required) and ``optional_meta_keys``
        (copied when present). ``ori_shape`` is the annotated frame's
        original size, taken from ``ori_shape`` or else mmaction2's
        ``original_shape``.

    The mask shapes are checked against ``img_shape`` / ``ori_shape``.

    Args:
        meta_keys (Sequence[str]): Defaults to ``('video_id', 'frame_id',
            'instance_id', 'sentence', 'ori_shape', 'img_shape',
            'actor_action')``.
        optional_meta_keys (Sequence[str]): Defaults to ``('flip',
            'flip_direction', 'ori_sentence', 'key_frame_index',
            'sample_idx')``.
        with_gt_mask (bool): Pack ``gt_mask`` (required). Defaults to True;
            False for inference without annotation.
        with_ori_mask (bool): Pack ``ori_gt_mask`` (required). Defaults to
            False.
        with_action_map (bool): Pack ``gt_action_map`` (required). Defaults
            to False.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('video_id', 'frame_id',
                                             'instance_id', 'sentence',
                                             'ori_shape', 'img_shape',
                                             'actor_action'),
                 optional_meta_keys: Sequence[str] = ('flip', 'flip_direction',
                                                      'ori_sentence',
                                                      'key_frame_index',
                                                      'sample_idx'),
                 with_gt_mask: bool = True,
                 with_ori_mask: bool = False,
                 with_action_map: bool = False) -> None:
        self.meta_keys = str_keys('PackReferSegInputs', 'meta_keys', meta_keys)
        self.optional_meta_keys = str_keys('PackReferSegInputs',
                                           'optional_meta_keys',
                                           optional_meta_keys)
        self.with_gt_mask = with_gt_mask
        self.with_ori_mask = with_ori_mask
        self.with_action_map = with_action_map

    @staticmethod
    def _mask_data(results: dict, key: str, shape, shape_name: str):
        if key not in results:
            raise KeyError(f'{key!r} missing from the results of video '
                           f"{results.get('video_id')!r}: add a mask loading "
                           'transform or turn the option off')
        mask = np.asarray(results[key])
        if mask.shape != tuple(shape):
            raise InvalidInputError(
                f'{key} of video {results.get("video_id")!r} frame '
                f'{results.get("frame_id")} has shape {mask.shape} but '
                f'{shape_name} is {tuple(shape)} (mask file '
                f'{results.get("mask_path")})')
        return PixelData(
            data=torch.from_numpy(
                np.ascontiguousarray(mask, dtype=np.uint8)[None]))

    def transform(self, results: dict) -> dict:
        if 'ori_shape' not in results and 'original_shape' in results:
            results['ori_shape'] = results['original_shape']
        for key in ('ori_shape', 'img_shape'):
            if key in results:
                results[key] = tuple(int(s) for s in results[key])
        missing = [k for k in self.meta_keys if k not in results]
        if missing:
            raise KeyError(f'PackReferSegInputs: keys {missing} missing from '
                           f"the results of video {results.get('video_id')!r}")
        imgs = np.stack(results['imgs'])  # T, h, w, 3
        if imgs.ndim != 4 or imgs.shape[-1] != 3:
            raise ValueError(f'expected T x h x w x 3 frames, got '
                             f'{imgs.shape}')
        inputs = torch.from_numpy(
            np.ascontiguousarray(imgs.transpose(3, 0, 1, 2)))

        sample = ReferSegDataSample()
        if self.with_gt_mask:
            sample.gt_mask = self._mask_data(results, 'gt_mask',
                                             results['img_shape'], 'img_shape')
        if self.with_ori_mask:
            sample.ori_gt_mask = self._mask_data(results, 'ori_gt_mask',
                                                 results['ori_shape'],
                                                 'ori_shape')
        if self.with_action_map:
            sample.gt_action_map = self._mask_data(results, 'gt_action_map',
                                                   results['img_shape'],
                                                   'img_shape')
        meta = {k: results[k] for k in self.meta_keys}
        meta.update(
            {k: results[k]
             for k in self.optional_meta_keys if k in results})
        sample.set_metainfo(meta)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(meta_keys={self.meta_keys}, '
                f'with_gt_mask={self.with_gt_mask}, '
                f'with_ori_mask={self.with_ori_mask}, '
                f'with_action_map={self.with_action_map})')


@TRANSFORMS.register_module()
class PackReferVideoInputs(BaseTransform):
    """Pack a whole video and its expressions (video-level test mode).

    One sample is one video with every expression that refers to something
    in it, so that the video encoder runs once for all of them
    (:class:`cmdyseg.engine.ReferVideoTestLoop`).

    Output:

    - ``inputs``: ``(T, h, w, 3)`` uint8 RGB tensor, every listed frame at
      the network input size (the layout :func:`cmdyseg.apis.segment_frames`
      takes; the loop cuts the clips out of it);
    - ``data_samples``: :class:`ReferSegDataSample` whose metainfo holds
      ``video_id``, ``frame_names``, ``ori_shape``, ``img_shape``,
      ``expressions`` (list of dicts with ``exp_id``, ``sentence``,
      ``mask_ids`` ...), ``window_inds`` ``(T, clip_len)`` (from
      :class:`SampleVideoWindows`), ``has_gt`` and ``gt_object_rles``
      (per-object COCO RLEs of every frame, None without masks).
    """

    REQUIRED = ('video_id', 'frame_names', 'expressions', 'window_inds',
                'img_shape')

    def transform(self, results: dict) -> dict:
        if 'ori_shape' not in results and 'original_shape' in results:
            results['ori_shape'] = results['original_shape']
        missing = [k for k in self.REQUIRED + ('ori_shape', )
                   if k not in results]
        if missing:
            raise KeyError(
                f'PackReferVideoInputs: keys {missing} missing from the '
                f"results of video {results.get('video_id')!r} (a video "
                'pipeline loads the frames, SampleVideoWindows adds '
                'window_inds)')
        imgs = np.stack(results['imgs'])
        if imgs.ndim != 4 or imgs.shape[-1] != 3:
            raise ValueError(f'expected T x h x w x 3 frames, got '
                             f'{imgs.shape}')
        window_inds = np.asarray(results['window_inds'])
        if window_inds.shape[0] != imgs.shape[0]:
            raise ValueError(
                f"video {results['video_id']!r}: {imgs.shape[0]} frames but "
                f'{window_inds.shape[0]} windows')
        sample = ReferSegDataSample()
        sample.set_metainfo(
            dict(
                video_id=results['video_id'],
                frame_names=list(results['frame_names']),
                ori_shape=tuple(int(s) for s in results['ori_shape']),
                img_shape=tuple(int(s) for s in results['img_shape']),
                expressions=list(results['expressions']),
                window_inds=window_inds,
                has_gt=bool(results.get('has_gt', False)),
                gt_object_rles=results.get('gt_object_rles')))
        return dict(
            inputs=torch.from_numpy(np.ascontiguousarray(imgs)),
            data_samples=sample)
