# Copyright (c) cmdyseg contributors. All rights reserved.
"""Clip sampling around the annotated frame and mask loading.

Frames themselves are decoded by mmaction2's transforms, which read the keys
that the datasets put in every sample: ``mmaction.OpenCVInit`` +
``mmaction.OpenCVDecode`` for a video (``filename``), or
``mmaction.RawFrameDecode`` for a folder of frames (``frame_dir``,
``filename_tmpl``, ``offset=1`` since frame files are 1-based). Both give
``imgs`` (list of ``(H, W, 3)`` uint8 RGB arrays), ``original_shape`` and
``img_shape``.
"""
import numpy as np
from mmcv.transforms import BaseTransform

from cmdyseg.registry import TRANSFORMS
from cmdyseg.utils.errors import InvalidInputError
from ..cache import BytesLRUCache
from ..file_io import (decode_video, load_a2d_action_map,
                       load_a2d_instance_mask, load_puppet_mask)


def _check_window(owner: str, clip_len, frame_interval) -> None:
    for option, value in (('clip_len', clip_len), ('frame_interval',
                                                   frame_interval)):
        if isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < 1:
            raise InvalidInputError(
                f'{owner}: {option} must be an int >= 1, got {value!r}')


def clip_indices(centres: np.ndarray, total: int, clip_len: int,
                 frame_interval: int = 1) -> np.ndarray:
    """0-based frame indices ``(N, clip_len)`` of the clips centred on the
    0-based frames ``centres`` of a ``total``-frame video: the centre at
    position ``clip_len // 2``, neighbours ``frame_interval`` apart, the
    border frame repeated past either end. The one definition of a clip,
    used for training samples (:class:`SampleReferClip`) and for the
    sliding windows of inference (:class:`SampleVideoWindows`)."""
    offsets = (np.arange(clip_len) - clip_len // 2) * frame_interval
    centres = np.asarray(centres, np.int64).reshape(-1, 1)
    return np.clip(centres + offsets, 0, total - 1).astype(np.int64)


@TRANSFORMS.register_module()
class SampleReferClip(BaseTransform):
    """Choose the frames of a clip with the annotated frame in the middle.

    The clip holds ``clip_len`` frames ``frame_interval`` apart; the
    annotated frame is at position ``clip_len // 2`` (8 of 0..15 for the
    paper's N_V = 16). Positions before the first or after the last frame
    repeat the border frame (edge padding).

    Required keys: ``frame_id`` (1-based annotated frame), ``total_frames``.
    Added keys: ``frame_inds`` (``(clip_len,)`` int64, 0-based, what
    mmaction2's decoders read), ``clip_len``, ``frame_interval``,
    ``num_clips`` (1), ``key_frame_index`` (``clip_len // 2``).

    Args:
        clip_len (int): Frames per clip, N_V. Defaults to 16.
        frame_interval (int): Temporal stride between clip frames.
            Defaults to 1.
    """

    def __init__(self, clip_len: int = 16, frame_interval: int = 1) -> None:
        _check_window(type(self).__name__, clip_len, frame_interval)
        self.clip_len = clip_len
        self.frame_interval = frame_interval

    def transform(self, results: dict) -> dict:
        frame_id = int(results['frame_id'])
        total = int(results['total_frames'])
        if not 1 <= frame_id <= total:
            raise IndexError(
                f"annotated frame {frame_id} of video "
                f"{results.get('video_id')!r} is outside its {total} frames")
        key = self.clip_len // 2
        inds = clip_indices(
            np.array([frame_id - 1]), total, self.clip_len,
            self.frame_interval)[0]
        results['frame_inds'] = inds
        results['clip_len'] = self.clip_len
        results['frame_interval'] = self.frame_interval
        results['num_clips'] = 1
        results['key_frame_index'] = key
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_len={self.clip_len}, '
                f'frame_interval={self.frame_interval})')


def _set_masks(results: dict, mask: np.ndarray) -> dict:
    results['gt_mask'] = mask
    results['ori_gt_mask'] = mask.copy()
    return results


@TRANSFORMS.register_module()
class LoadA2DInstanceMask(BaseTransform):
    """Load the referred instance's mask from an A2D ``.h5`` file.

    Required keys: ``mask_path``, ``mask_indices`` (rows of ``reMask``,
    chosen by :class:`A2DSentencesDataset`), ``instance_id``.
    Added keys: ``gt_mask`` and ``ori_gt_mask``, both ``(H, W)`` uint8 0/1
    at the original frame size (``gt_mask`` follows later resizes,
    ``ori_gt_mask`` only flips).
    """

    def transform(self, results: dict) -> dict:
        mask = load_a2d_instance_mask(results['mask_path'],
                                      list(results['mask_indices']),
                                      int(results['instance_id']))
        return _set_masks(results, mask)


@TRANSFORMS.register_module()
class LoadA2DActionMap(BaseTransform):
    """Load every actor's action per pixel from an A2D ``.h5`` file.

    The target of :class:`cmdyseg.models.heads.ActionSegAuxHead`: 0 where
    no actor is, the 1-based action (the units digit of A2D's actor-action
    code) of the actor a pixel belongs to, 255 where none can be said (see
    :func:`cmdyseg.datasets.file_io.load_a2d_action_map`). Put it beside
    :class:`LoadA2DInstanceMask`; resize it with ``ResizeMask(keys=(...,
    'gt_action_map'))`` (nearest) and let ``ReferFlip(label_swaps=...)``
    mirror the actions a flip mirrors.

    Required keys: ``mask_path``. Added keys: ``gt_action_map``, ``(H, W)``
    uint8 at the original frame size.
    """

    def transform(self, results: dict) -> dict:
        results['gt_action_map'] = load_a2d_action_map(results['mask_path'])
        return results


@TRANSFORMS.register_module()
class LoadJHMDBPuppetMask(BaseTransform):
    """Load the annotated frame's J-HMDB puppet mask.

    Required keys: ``mask_path`` (``puppet_mask.mat``), ``frame_id``
    (1-based). Added keys: ``gt_mask``, ``ori_gt_mask`` as
    :class:`LoadA2DInstanceMask`.

    Args:
        key (str): Variable in the ``.mat`` file. Defaults to
            ``'part_mask'``.
    """

    def __init__(self, key: str = 'part_mask') -> None:
        if not isinstance(key, str) or not key:
            raise InvalidInputError(
                'LoadJHMDBPuppetMask: key must be the name of a '
                f"variable of the .mat file, got {key!r}")
        self.key = key

    def transform(self, results: dict) -> dict:
        mask = load_puppet_mask(results['mask_path'],
                                int(results['frame_id']) - 1, self.key)
        return _set_masks(results, mask)


@TRANSFORMS.register_module()
class SampleVideoWindows(BaseTransform):
    """The sliding windows that segment every frame of a video.

    Video-level test pipelines (one sample = one video and all its
    expressions) use it where frame-level ones use
    :class:`SampleReferClip`: frame ``t`` is segmented from the clip
    centred on it, exactly the clip :class:`SampleReferClip` builds for
    annotated frame ``t + 1``.

    Required keys: ``total_frames``. Added keys: ``window_inds``
    ``(total_frames, clip_len)`` int64, ``clip_len``, ``frame_interval``.

    Args:
        clip_len (int): Frames per clip, as the model was trained with.
        frame_interval (int): Temporal stride between clip frames.
    """

    def __init__(self, clip_len: int = 16, frame_interval: int = 1) -> None:
        _check_window(type(self).__name__, clip_len, frame_interval)
        self.clip_len = clip_len
        self.frame_interval = frame_interval

    def transform(self, results: dict) -> dict:
        total = int(results['total_frames'])
        if total < 1:
            raise IndexError(
                f"video {results.get('video_id')!r} has no frame to segment")
        results['window_inds'] = clip_indices(
            np.arange(total), total, self.clip_len, self.frame_interval)
        results['clip_len'] = self.clip_len
        results['frame_interval'] = self.frame_interval
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_len={self.clip_len}, '
                f'frame_interval={self.frame_interval})')


@TRANSFORMS.register_module()
class CachedOpenCVInit(BaseTransform):
    """``mmaction.OpenCVInit`` for video files on disk, with every frame of
    the video decoded once per dataloader worker and kept
    (:mod:`cmdyseg.datasets.cache`): for datasets of short, small videos
    that are sampled many times per epoch (the embedded synthetic data:
    ~18 samples per 32-frame 96 x 128 video, 1.2 MB decoded). Long videos
    at full size (A2D's) would fill the cache with few videos and decode
    whole videos for one clip each: keep ``mmaction.OpenCVInit`` there.

    Pair it with :class:`CachedOpenCVDecode`. The frames are the ones
    ``OpenCVInit`` + ``OpenCVDecode`` give (tested): OpenCV decodes a
    video the same way whether it seeks to a frame or reads up to it.

    Required keys: ``filename``. Added keys: ``total_frames`` (the
    container's frame count, as ``OpenCVInit`` gives it) and
    ``video_frames`` (the decoded frames, read-only ``(N, H, W, 3)`` BGR).

    Args:
        cache_mb (int): Megabytes of decoded frames each worker keeps
            (least recently used first out). Defaults to 1024.
    """

    def __init__(self, cache_mb: int = 1024) -> None:
        if isinstance(cache_mb, bool) or not isinstance(
                cache_mb, int) or cache_mb < 0:
            raise InvalidInputError(
                f'CachedOpenCVInit: cache_mb must be an int >= 0, got '
                f'{cache_mb!r}')
        self.cache_mb = cache_mb
        self.cache = BytesLRUCache(cache_mb << 20)

    def transform(self, results: dict) -> dict:
        path = results['filename']
        count, frames = self.cache.load(path, lambda: decode_video(path))
        results['total_frames'] = count
        results['video_frames'] = frames
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(cache_mb={self.cache_mb})'


@TRANSFORMS.register_module()
class CachedOpenCVDecode(BaseTransform):
    """``mmaction.OpenCVDecode`` from :class:`CachedOpenCVInit`'s frames.

    A frame index past the last decodable frame gets the last one, as
    ``OpenCVDecode`` steps back over frames OpenCV returns as None.

    Required keys: ``video_frames``, ``frame_inds``. Added keys: ``imgs``
    (list of ``(H, W, 3)`` uint8 RGB), ``original_shape``, ``img_shape``;
    ``video_frames`` is removed.
    """

    def transform(self, results: dict) -> dict:
        frames = results.pop('video_frames')
        inds = np.asarray(results['frame_inds'])
        if inds.ndim != 1:
            inds = np.squeeze(inds)
            results['frame_inds'] = inds
        imgs = frames[np.minimum(inds.astype(np.int64), len(frames) - 1)]
        imgs = imgs[:, :, :, ::-1]  # BGR -> RGB, as OpenCVDecode does
        results['imgs'] = list(imgs)
        results['original_shape'] = imgs[0].shape[:2]
        results['img_shape'] = imgs[0].shape[:2]
        return results
