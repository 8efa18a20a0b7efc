# Copyright (c) cmdyseg contributors. All rights reserved.
"""Frame and mask loading for Ref-YouTube-VOS, Ref-DAVIS17 and MeViS.

The samples of :mod:`cmdyseg.datasets.rvos` name their frames by a folder
and a list of file names (``frame_dir``, ``frame_names``: the frames the
meta file lists, which are not numbered 1, 2, 3... -- Ref-YouTube-VOS keeps
every 5th frame), so :class:`LoadListedFrames` reads them where mmaction2's
``RawFrameDecode`` would need a file name template.

Masks come in two forms:

- palette (index) PNGs, one per frame, pixel value = object id
  (Ref-YouTube-VOS ``Annotations``, DAVIS ``Annotations/480p``);
- COCO run-length encodings, one per (object annotation, frame), ``None``
  where the object is absent (MeViS ``mask_dict.json``; its ``counts`` are
  JSON strings).

:class:`LoadReferObjectMask` gives the referred object's mask of one frame
(frame-level training samples); :class:`LoadVideoObjectMasks` gives, for a
whole video, the RLEs of every object its expressions refer to, and
:func:`expression_gt` turns them into one expression's ``(T, H, W)`` ground
truth.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image
from pycocotools import mask as mask_utils

from cmdyseg.registry import TRANSFORMS
from ..file_io import DataFileError
from .loading import _set_masks

# PIL modes of a single-channel integer image: the value is the object id.
INDEX_PNG_MODES = ('P', 'L', '1', 'I', 'I;16')


def read_index_png(path: str) -> np.ndarray:
    """The object-id map of a palette / index PNG.

    Args:
        path (str): The PNG (pixel value = object id, 0 = background).

    Returns:
        np.ndarray: ``(H, W)`` integer array of object ids.

    Raises:
        DataFileError: missing file, not an image, or a colour (RGB / RGBA)
            PNG, whose pixel values are not object ids.
    """
    if not osp.isfile(path):
        raise DataFileError(path, 'mask file does not exist')
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode not in INDEX_PNG_MODES:
                raise DataFileError(
                    path, f'mask PNG has mode {mode!r}: a palette (P) or '
                    'grey-level (L) index PNG is expected, pixel value = '
                    'object id (a colour image cannot say which object a '
                    'pixel belongs to; write the masks as index PNGs)')
            label = np.array(img)
    except DataFileError:
        raise
    except (OSError, ValueError, SyntaxError) as e:
        raise DataFileError(path, f'mask PNG does not decode ({e})') from e
    if label.ndim != 2:
        raise DataFileError(
            path, f'mask PNG has shape {label.shape}; '
            'expected H x W object ids')
    return label.astype(np.int64) if label.dtype == bool else label


def _frame_path(results: dict, index: int) -> str:
    return osp.join(results['frame_dir'], results['frame_names'][index])


def frame_size(path: str) -> Tuple[int, int]:
    """``(H, W)`` of an image file, read from its header."""
    if not osp.isfile(path):
        raise DataFileError(path, 'frame file does not exist')
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (OSError, ValueError, SyntaxError) as e:
        raise DataFileError(path, f'frame image does not decode ({e})') from e
    return int(h), int(w)


def _known_shape(results: dict, index: int) -> Tuple[int, int]:
    """The original frame size: from :class:`LoadListedFrames` if it ran,
    else from the header of frame ``index`` (0-based)."""
    shape = results.get('original_shape')
    if shape is not None:
        return int(shape[0]), int(shape[1])
    return frame_size(_frame_path(results, index))


def _loaded_shape(results: dict) -> Optional[Tuple[int, int]]:
    """``(H, W)`` of the frames if :class:`LoadListedFrames` ran."""
    shape = results.get('original_shape')
    return None if shape is None else (int(shape[0]), int(shape[1]))


def empty_rle(shape: Sequence[int]) -> Dict:
    """The COCO RLE (``bytes`` counts) of an all-zero ``(H, W)`` mask."""
    h, w = int(shape[0]), int(shape[1])
    return mask_utils.encode(np.zeros((h, w), np.uint8, order='F'))


def encode_mask(mask: np.ndarray) -> Dict:
    """COCO RLE (``bytes`` counts) of a 0/1 ``(H, W)`` mask."""
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def normalize_rle(rle, where: Tuple[str, str]) -> Dict:
    """A COCO RLE dict with ``bytes`` counts (MeViS JSON stores ``str``).

    Args:
        rle: ``{'size': [h, w], 'counts': str | bytes}``.
        where (tuple[str, str]): ``(file, what)`` for the error message,
            e.g. ``('.../mask_dict.json', "anno_id '3' frame 7")``.

    Raises:
        DataFileError: not an RLE dict, naming ``where``.
    """
    path, what = where
    if (not isinstance(rle, dict) or 'counts' not in rle or 'size' not in rle):
        raise DataFileError(
            path, f"{what}: expected a COCO RLE {{'size': [h, w], "
            f"'counts': ...}} or null, got {type(rle).__name__}")
    counts = rle['counts']
    if isinstance(counts, str):
        counts = counts.encode('ascii')
    elif not isinstance(counts, bytes):
        raise DataFileError(
            path, f'{what}: RLE counts must be a string (compressed COCO '
            f'RLE), got {type(counts).__name__}')
    try:
        h, w = (int(s) for s in rle['size'])
    except (TypeError, ValueError):
        raise DataFileError(
            path, f"{what}: RLE size must be [h, w], got "
            f"{rle['size']!r}") from None
    return {'size': [h, w], 'counts': counts}


def _decode_rles(rles: List[Dict], where: Tuple[str, str]) -> np.ndarray:
    """``(H, W, N)`` uint8 masks of RLEs of one size."""
    try:
        return mask_utils.decode(rles)
    except Exception as e:  # pycocotools raises bare Exceptions
        path, what = where
        raise DataFileError(
            path, f'{what}: RLE does not decode '
            f'({type(e).__name__}: {e})') from e


def expression_gt(gt_object_rles: Optional[Dict[str, List[Dict]]],
                  mask_ids: Sequence, num_frames: int,
                  shape: Sequence[int]) -> np.ndarray:
    """The ground truth of one expression on every frame of its video.

    Args:
        gt_object_rles (dict): ``mask_id (str) -> list of T COCO RLEs``, as
            :class:`LoadVideoObjectMasks` produces.
        mask_ids (Sequence): The expression's ``mask_ids`` (str or int;
            compared as str).
        num_frames (int): T, the number of listed frames.
        shape (Sequence[int]): ``(H, W)``, the frames' original size.

    Returns:
        np.ndarray: ``(T, H, W)`` uint8 0/1, the union of the objects'
        masks; all zeros when ``mask_ids`` is empty.

    Raises:
        KeyError: a mask id without RLEs; ``ValueError``: RLEs of another
            length or size.
    """
    h, w = int(shape[0]), int(shape[1])
    out = np.zeros((int(num_frames), h, w), np.uint8)
    if not mask_ids:
        return out
    if gt_object_rles is None:
        raise ValueError('expression_gt: the video has no ground truth '
                         '(gt_object_rles is None)')
    for mask_id in mask_ids:
        key = str(mask_id)
        if key not in gt_object_rles:
            raise KeyError(f'expression_gt: no masks of object {key!r} '
                           f'(have {sorted(gt_object_rles)})')
        rles = list(gt_object_rles[key])
        if len(rles) != num_frames:
            raise ValueError(
                f'expression_gt: object {key!r} has {len(rles)} masks for '
                f'{num_frames} frames')
        if not rles:
            continue
        masks = mask_utils.decode(rles)  # H, W, T
        if masks.shape[:2] != (h, w):
            raise ValueError(
                f'expression_gt: masks of object {key!r} are '
                f'{masks.shape[0]}x{masks.shape[1]}, frames {h}x{w}')
        out |= np.moveaxis(masks, -1, 0)
    return out


@TRANSFORMS.register_module()
class LoadListedFrames(BaseTransform):
    """Decode the listed frames of a video (a folder of image files).

    What mmaction2's ``RawFrameDecode`` does, for frames named by a list
    rather than a numbered template. Each distinct frame is decoded once
    (a clip padded at the video's edges repeats frames; the repeats are
    copies, so that in-place transforms such as mmaction2's ``Flip`` treat
    each list entry once).

    Required keys: ``frame_dir``, ``frame_names``; optional ``frame_inds``
    (0-based indices into ``frame_names``, as :class:`SampleReferClip`
    adds; without it every listed frame, in order).
    Added keys: ``imgs`` (list of ``(H, W, 3)`` uint8 RGB arrays),
    ``original_shape`` and ``img_shape`` (``(H, W)``).

    Raises:
        DataFileError: a missing or undecodable frame file (named), or a
            frame whose size differs from the first one's.
    """

    def transform(self, results: dict) -> dict:
        names = results['frame_names']
        inds = results.get('frame_inds')
        if inds is None:
            inds = np.arange(len(names), dtype=np.int64)
        inds = np.asarray(inds, dtype=np.int64).ravel()
        if inds.size == 0:
            raise IndexError(f"video {results.get('video_id')!r}: no frame "
                             'to load (frame_inds is empty)')
        bad = inds[(inds < 0) | (inds >= len(names))]
        if bad.size:
            raise IndexError(
                f"video {results.get('video_id')!r}: frame index "
                f'{int(bad[0])} outside its {len(names)} listed frames')
        decoded: Dict[int, np.ndarray] = {}
        imgs = []
        shape = None
        for ind in inds.tolist():
            if ind in decoded:
                imgs.append(decoded[ind].copy())
                continue
            path = _frame_path(results, ind)
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                if not osp.isfile(path):
                    raise DataFileError(path, 'frame file does not exist')
                raise DataFileError(
                    path, 'frame image does not decode (corrupt, truncated '
                    'or not an image)')
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            if shape is None:
                shape = img.shape[:2]
            elif img.shape[:2] != shape:
                raise DataFileError(
                    path, f'frame is {img.shape[0]}x{img.shape[1]} but the '
                    f'first frame loaded is {shape[0]}x{shape[1]}')
            decoded[ind] = img
            imgs.append(img)
        results['imgs'] = imgs
        results['original_shape'] = tuple(shape)
        results['img_shape'] = tuple(shape)
        return results


@TRANSFORMS.register_module()
class LoadReferObjectMask(BaseTransform):
    """Load the referred object's mask of one frame (frame-level samples).

    Two sources, as the datasets of :mod:`cmdyseg.datasets.rvos` give them:

    - ``mask_path`` + ``obj_ids`` (Ref-YouTube-VOS, Ref-DAVIS17): a palette
      / index PNG whose pixel value is the object id; the mask is
      ``isin(label, obj_ids)``. A missing PNG is an error, unless the sample
      carries ``missing_mask='empty'`` (the dataset's option): then the
      object is absent from that frame.
    - ``mask_rles`` (MeViS): one COCO RLE (or None: absent) per referred
      annotation (``mask_ids``); the mask is their union, empty when all
      are None. ``mask_path`` (``mask_dict.json``) names them in errors.

    Required keys: ``frame_id`` (1-based), ``frame_dir``, ``frame_names``
    and one of the sources above. Added keys: ``gt_mask`` and
    ``ori_gt_mask``, ``(H, W)`` uint8 0/1 at the original frame size.

    Raises:
        DataFileError: missing / undecodable / colour PNG, or a mask whose
            size is not the frame's (naming the file, and for RLEs the
            anno_id and frame).
    """

    def transform(self, results: dict) -> dict:
        index = int(results['frame_id']) - 1
        if 'mask_rles' in results:
            mask = self._from_rles(results, index)
        else:
            mask = self._from_png(results, index)
        return _set_masks(results, mask)

    @staticmethod
    def _from_png(results: dict, index: int) -> np.ndarray:
        path = results['mask_path']
        if path is None or not osp.isfile(path):
            if results.get('missing_mask') == 'empty':
                return np.zeros(_known_shape(results, index), np.uint8)
            raise DataFileError(
                path, 'mask file does not exist (the frame is listed; '
                "missing_mask='empty' would read it as an absent object)")
        label = read_index_png(path)
        shape = results.get('original_shape')
        if shape is not None and tuple(label.shape) != tuple(shape[:2]):
            raise DataFileError(
                path, f'mask is {label.shape[0]}x{label.shape[1]} but frame '
                f"{results['frame_names'][index]} is {shape[0]}x{shape[1]}")
        obj_ids = [int(o) for o in results['obj_ids']]
        return np.isin(label, obj_ids).astype(np.uint8)

    @staticmethod
    def _from_rles(results: dict, index: int) -> np.ndarray:
        path = results.get('mask_path')
        rles = list(results['mask_rles'])
        ids = [str(i) for i in results.get('mask_ids', range(len(rles)))]
        shape = _known_shape(results, index)
        frame = results['frame_names'][index]
        mask = np.zeros(shape, np.uint8)
        for mask_id, rle in zip(ids, rles):
            if rle is None:
                continue
            where = (path, f'anno_id {mask_id!r} frame {index} ({frame})')
            rle = normalize_rle(rle, where)
            if tuple(rle['size']) != shape:
                raise DataFileError(
                    path, f'{where[1]}: RLE size {rle["size"][0]}x'
                    f'{rle["size"][1]} differs from the frame size '
                    f'{shape[0]}x{shape[1]}')
            mask |= _decode_rles([rle], where)[..., 0]
        return mask


@TRANSFORMS.register_module()
class LoadVideoObjectMasks(BaseTransform):
    """Per-object masks of every listed frame of a video, as COCO RLEs.

    For video-level samples (one video, all its expressions). Compact on
    purpose: a MeViS video has ~200 frames and many objects, so each
    object's masks stay RLEs until :func:`expression_gt` decodes the
    union of one expression.

    Required keys: ``has_gt``, ``expressions`` (their ``mask_ids``), and
    when ``has_gt`` one of

    - ``mask_paths`` (palette datasets): one PNG path per listed frame, or
      None where the frame has no PNG (every object absent). Each PNG is
      read once and ``label == id`` encoded for every mask id;
    - ``object_rles`` (MeViS): ``str(anno_id) -> list of T RLEs or None``;
      None becomes an empty RLE, ``str`` counts become ``bytes``.

    Added keys: ``gt_object_rles`` (``mask_id (str) -> list of T COCO RLEs
    with bytes counts``; None when not ``has_gt``) and, with masks,
    ``ori_shape`` (``(H, W)``: the frames' ``original_shape`` when
    :class:`LoadListedFrames` ran before, every mask checked against it;
    else the first PNG / RLE's size, or the first frame's when no frame
    has a mask).

    Raises:
        DataFileError: an unreadable / colour PNG, masks of different
            sizes, or a malformed RLE (naming the file, object and frame).
    """

    def transform(self, results: dict) -> dict:
        if not results.get('has_gt'):
            results['gt_object_rles'] = None
            return results
        mask_ids: List[str] = []
        for exp in results['expressions']:
            for mask_id in exp.get('mask_ids', []):
                if str(mask_id) not in mask_ids:
                    mask_ids.append(str(mask_id))
        if 'mask_paths' in results:
            rles, shape = self._from_pngs(results, mask_ids)
        elif 'object_rles' in results:
            rles, shape = self._from_rles(results, mask_ids)
        else:
            raise KeyError(
                f"video {results.get('video_id')!r} has_gt but neither "
                'mask_paths nor object_rles (a dataset of '
                'cmdyseg.datasets.rvos in sample_mode="video" gives them)')
        results['gt_object_rles'] = rles
        results['ori_shape'] = shape
        return results

    @staticmethod
    def _from_pngs(results: dict, mask_ids: List[str]):
        paths = list(results['mask_paths'])
        if not mask_ids:  # no expression names an object: nothing to read
            return {}, _known_shape(results, 0)
        rles: Dict[str, List[Dict]] = {m: [] for m in mask_ids}
        shape = _loaded_shape(results)
        first = 'frame ' + results['frame_names'][0] if shape else None
        empty = None
        for t, path in enumerate(paths):
            if path is None:
                if shape is None:
                    shape = _known_shape(results, t)
                if empty is None:
                    empty = empty_rle(shape)
                for m in mask_ids:
                    rles[m].append(dict(empty))
                continue
            label = read_index_png(path)
            if shape is None:
                shape = tuple(label.shape)
            elif tuple(label.shape) != shape:
                raise DataFileError(
                    path, f'mask is {label.shape[0]}x{label.shape[1]} but '
                    f'{first or "the frames"} is {shape[0]}x{shape[1]}')
            first = first or path
            for m in mask_ids:
                rles[m].append(encode_mask(label == int(m)))
        if shape is None:  # no frame at all
            shape = _known_shape(results, 0)
        return rles, (int(shape[0]), int(shape[1]))

    @staticmethod
    def _from_rles(results: dict, mask_ids: List[str]):
        path = results.get('mask_path')
        object_rles = results['object_rles']
        num = len(results['frame_names'])
        shape = _loaded_shape(results)
        for m in mask_ids:
            if shape is not None:
                break
            for t, rle in enumerate(object_rles.get(m) or []):
                if rle is not None:
                    shape = tuple(
                        normalize_rle(rle, (path, f'anno_id {m!r} frame '
                                            f'{t}'))['size'])
                    break
        if shape is None:  # every referred object absent everywhere
            shape = _known_shape(results, 0)
        empty = empty_rle(shape)
        rles: Dict[str, List[Dict]] = {}
        for m in mask_ids:
            if m not in object_rles:
                raise DataFileError(
                    path, f"no anno_id {m!r} (video "
                    f"{results.get('video_id')!r})")
            per_frame = list(object_rles[m])
            if len(per_frame) != num:
                raise DataFileError(
                    path, f'anno_id {m!r} has {len(per_frame)} masks but '
                    f"video {results.get('video_id')!r} lists {num} frames")
            out = []
            for t, rle in enumerate(per_frame):
                if rle is None:
                    out.append(dict(empty))
                    continue
                where = (path, f'anno_id {m!r} frame {t} '
                         f"({results['frame_names'][t]})")
                rle = normalize_rle(rle, where)
                if tuple(rle['size']) != shape:
                    raise DataFileError(
                        path, f'{where[1]}: RLE size {rle["size"][0]}x'
                        f'{rle["size"][1]} differs from the frame size '
                        f'{shape[0]}x{shape[1]}')
                out.append(rle)
            rles[m] = out
        return rles, (int(shape[0]), int(shape[1]))
