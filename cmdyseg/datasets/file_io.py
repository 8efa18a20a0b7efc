# Copyright (c) cmdyseg contributors. All rights reserved.
"""Readers for the on-disk files of A2D Sentences and J-HMDB Sentences.

Every reader turns a missing, unreadable or inconsistent file into a
:class:`DataFileError` that names the file, so that the datasets can either
stop with that message (``on_missing='error'``) or skip the file and count it
(``on_missing='skip'``). The formats, as the dataset authors distribute them:

- A2D ``a2d_annotation_with_instances/<vid>/<frame:05d>.h5`` (MATLAB v7.3,
  read with h5py): ``instance`` (instance ids), ``reMask`` (``N x W x H``, or
  ``W x H`` when N == 1: h5py reads MATLAB's column-major arrays with the axes
  reversed, so every mask is transposed to ``H x W``), ``reBBox`` (4 x N) and
  ``id`` (actor-action code per instance, tens = actor, units = action).
- J-HMDB ``puppet_mask/<action>/<vid>/puppet_mask.mat``: ``part_mask``
  ``H x W x T``; read with :func:`scipy.io.loadmat`, or with h5py when the file
  is a v7.3 (HDF5) one, where the axes come reversed (``T x W x H``).
- Videos (``.mp4``) probed with OpenCV; frame folders with 1-based names.
"""
import contextlib
import os
import os.path as osp
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import h5py
import numpy as np
import scipy.io

from cmdyseg.utils.errors import UserInputError
from .cache import BytesLRUCache


class DataFileError(UserInputError, OSError):
    """A data file is missing, unreadable or inconsistent.

    Args:
        path (str): The file (or folder) at fault.
        reason (str, optional): What is wrong with it. Given alone, ``path``
            is a whole message: that is how torch's DataLoader re-raises
            the error of a worker process (``cls(worker traceback text)``),
            and the original ``path: reason`` is then recovered from the
            traceback's last line, so that the message stays one line.
    """

    def __init__(self, path: str, reason: Optional[str] = None) -> None:
        if reason is None:
            path, reason = _split_message(str(path))
        self.path = path
        self.reason = reason
        super().__init__(f'{path}: {reason}' if path else reason)

    def __reduce__(self):
        # default pickling would call cls(message) and fail (DataLoader
        # workers pickle exceptions)
        return (type(self), (self.path, self.reason))


def _split_message(text: str) -> Tuple[str, str]:
    """``(path, reason)`` of a ``DataFileError`` message, or of a traceback
    whose last line is one (``...DataFileError: path: reason``)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    message = lines[-1] if lines else ''
    match = re.match(r'^[\w.]*Error: (.*)$', message)
    if match and len(lines) > 1:
        message = match.group(1)
    path, sep, reason = message.partition(': ')
    return (path, reason) if sep else ('', message)


def _as_int_vector(values: np.ndarray, path: str, key: str) -> List[int]:
    """Flatten a MATLAB numeric array (any shape, often float) into ints."""
    flat = np.asarray(values).ravel()
    if flat.size and not np.issubdtype(flat.dtype, np.number):
        raise DataFileError(path, f'key {key!r} is not numeric '
                            f'(dtype {flat.dtype})')
    if flat.size and not np.all(np.isfinite(flat)):
        raise DataFileError(path, f'key {key!r} holds non-finite values')
    ints = np.rint(flat).astype(np.int64)
    if flat.size and not np.array_equal(ints, flat):
        raise DataFileError(path, f'key {key!r} holds non-integer values '
                            f'{flat.tolist()}')
    return ints.tolist()


def read_a2d_frame_index(path: str) -> Dict:
    """Read what an A2D instance-mask file says, without its masks.

    Args:
        path (str): ``<vid>/<frame:05d>.h5``.

    Returns:
        dict: ``instance_ids`` (list[int], in file order, may repeat),
        ``actor_actions`` (list[int], ``id`` key, empty if absent) and
        ``num_masks`` (int, masks in ``reMask``; may exceed the number of
        instance ids, a known glitch of the real files).

    Raises:
        DataFileError: missing file, not HDF5, or missing/odd keys.
    """
    if not osp.isfile(path):
        raise DataFileError(path, 'mask file does not exist')
    try:
        with h5py.File(path, 'r') as f:
            for key in ('instance', 'reMask'):
                if key not in f:
                    raise DataFileError(
                        path, f'key {key!r} missing (keys: {sorted(f)})')
            instance_ids = _as_int_vector(f['instance'][()], path, 'instance')
            actor_actions = (
                _as_int_vector(f['id'][()], path, 'id') if 'id' in f else [])
            shape = f['reMask'].shape
    except DataFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise DataFileError(path, f'cannot read as HDF5 ({e})') from e
    if len(shape) == 2:
        num_masks = 1
    elif len(shape) == 3:
        num_masks = shape[0]
    else:
        raise DataFileError(
            path, f'reMask has shape {shape}; expected N x W x H or W x H')
    return dict(
        instance_ids=instance_ids,
        actor_actions=actor_actions,
        num_masks=int(num_masks))


def read_a2d_masks(path: str, with_codes: bool = False) -> Tuple:
    """All instance ids and masks of an A2D ``.h5`` file.

    Args:
        path (str): The ``.h5`` file.
        with_codes (bool): Also return the ``id`` key (actor-action code per
            row; empty when the file has none). Defaults to False.

    Returns:
        tuple: ``instance_ids`` (list[int], file order) and the masks,
        ``(N, H, W)`` as stored (``reMask`` is N x W x H, or W x H when
        N == 1: transposed here); with ``with_codes`` then the codes
        (list[int]).
    """
    if not osp.isfile(path):
        raise DataFileError(path, 'mask file does not exist')
    # a training sample reads its file twice (instance mask, action map)
    ids, masks, codes = _MASK_CACHE.load(path, lambda: _read_a2d_masks(path))
    if not masks.flags.writeable:  # the cache's: callers may write theirs
        masks = masks.copy()
    if not with_codes:
        return list(ids), masks
    if isinstance(codes, DataFileError):
        raise codes
    return list(ids), masks, list(codes)


#: what :func:`read_a2d_masks` read, per process (64 MiB: thousands of
#: files at the embedded data's size)
_MASK_CACHE = BytesLRUCache(64 << 20)


def _read_a2d_masks(path: str) -> Tuple:
    try:
        with h5py.File(path, 'r') as f:
            ids = _as_int_vector(f['instance'][()], path, 'instance')
            masks = np.asarray(f['reMask'][()])
            codes = []
            if 'id' in f:
                try:
                    codes = _as_int_vector(f['id'][()], path, 'id')
                except DataFileError as e:
                    codes = e  # an error only for who asks for the codes
    except DataFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise DataFileError(path, f'cannot read as HDF5 ({e})') from e
    if masks.ndim == 2:  # one instance: W x H
        masks = masks[None]
    if masks.ndim != 3:
        raise DataFileError(path, f'reMask has shape {masks.shape}')
    masks = masks.transpose(0, 2, 1)
    return tuple(ids), masks, codes if isinstance(
        codes, DataFileError) else tuple(codes)


#: Label of the pixels an action map does not count (mmseg's ignore_index).
ACTION_MAP_IGNORE = 255


def load_a2d_action_map(path: str) -> np.ndarray:
    """Every actor's action, per pixel, from an A2D ``.h5`` file.

    A2D annotates each instance of a frame with an actor-action code (``id``:
    tens = actor, units = action, 1-based); the map holds the action of the
    instance each pixel belongs to, 0 where there is none -- the labels of
    A2D's actor-action segmentation task, used as an auxiliary target
    (:class:`cmdyseg.models.heads.ActionSegAuxHead`).

    Pixels that no label can be given are :data:`ACTION_MAP_IGNORE` (255):
    those of a mask without a code (a known glitch of the real files: more
    masks than ids) and those two instances with different actions share.

    Returns:
        np.ndarray: ``(H, W)`` uint8.
    """
    _, masks, codes = read_a2d_masks(path, with_codes=True)
    label = np.zeros(masks.shape[1:], dtype=np.uint8)
    owner = np.full(masks.shape[1:], -1, dtype=np.int64)
    for row, mask in enumerate(masks):
        code = codes[row] if row < len(codes) else 0
        # units digit; a code without one (<= 0, or 10, 20, ...) is unknown
        action = code % 10 if code > 0 and code % 10 else ACTION_MAP_IGNORE
        fg = mask > 0
        clash = fg & (owner >= 0) & (label != action)
        label[fg] = action
        label[clash] = ACTION_MAP_IGNORE
        owner[fg] = row
    return label


def load_a2d_instance_mask(path: str, mask_indices: Sequence[int],
                           instance_id: int) -> np.ndarray:
    """Load one instance's mask from an A2D ``.h5`` file.

    Args:
        path (str): The ``.h5`` file.
        mask_indices (Sequence[int]): Rows of ``reMask`` to take (several are
            OR-ed; the dataset chooses them, see ``duplicate_instance`` of
            :class:`A2DSentencesDataset`).
        instance_id (int): The instance the rows must belong to; checked
            against the ``instance`` key so that a file changed since the
            dataset was indexed is caught.

    Returns:
        np.ndarray: ``(H, W)`` uint8 mask with values 0/1.
    """
    ids, masks = read_a2d_masks(path)
    if not mask_indices:
        raise DataFileError(path, f'no mask row given for instance '
                            f'{instance_id}')
    for i in mask_indices:
        if not 0 <= i < len(ids) or ids[i] != instance_id:
            raise DataFileError(
                path, f'row {i} is not instance {instance_id} (instance '
                f'key: {ids}); the file changed after indexing?')
        if i >= masks.shape[0]:
            raise DataFileError(
                path, f'row {i} missing: reMask holds {masks.shape[0]} '
                'masks')
    mask = np.zeros(masks.shape[1:], dtype=np.uint8)
    for i in mask_indices:
        mask |= (masks[i] > 0).astype(np.uint8)
    return mask


def _is_hdf5(path: str) -> bool:
    try:
        return h5py.is_hdf5(path)
    except OSError:
        return False


def puppet_mask_shape(path: str, key: str = 'part_mask') -> Tuple[int, ...]:
    """``(H, W, T)`` of a J-HMDB puppet mask, read without loading it."""
    if not osp.isfile(path):
        raise DataFileError(path, 'puppet mask file does not exist')
    try:
        if _is_hdf5(path):  # MATLAB v7.3: axes reversed
            with h5py.File(path, 'r') as f:
                if key not in f:
                    raise DataFileError(
                        path, f'key {key!r} missing (keys: {sorted(f)})')
                shape = tuple(reversed(f[key].shape))
        else:
            found = {
                name: shape
                for name, shape, _ in scipy.io.whosmat(path)
            }
            if key not in found:
                raise DataFileError(
                    path, f'key {key!r} missing (keys: {sorted(found)})')
            shape = tuple(found[key])
    except DataFileError:
        raise
    except (OSError, ValueError, TypeError, KeyError,
            NotImplementedError) as e:
        raise DataFileError(path, f'cannot read as .mat ({e})') from e
    if len(shape) == 2:  # a one-frame video
        shape = shape + (1, )
    if len(shape) != 3:
        raise DataFileError(path, f'{key} has shape {shape}; expected '
                            'H x W x T')
    return tuple(int(s) for s in shape)


def load_puppet_mask(path: str, frame_index: int,
                     key: str = 'part_mask') -> np.ndarray:
    """Load frame ``frame_index`` (0-based) of a J-HMDB puppet mask.

    Returns:
        np.ndarray: ``(H, W)`` uint8 mask with values 0/1.
    """
    if not osp.isfile(path):
        raise DataFileError(path, 'puppet mask file does not exist')
    try:
        if _is_hdf5(path):
            with h5py.File(path, 'r') as f:
                data = f[key]
                if data.ndim == 2:
                    frames = np.asarray(data[()]).T[..., None]
                else:
                    if not 0 <= frame_index < data.shape[0]:
                        raise DataFileError(
                            path, f'frame index {frame_index} out of range '
                            f'({data.shape[0]} masks)')
                    frames = np.asarray(data[frame_index]).T[..., None]
                    frame_index = 0
        else:
            frames = scipy.io.loadmat(path, variable_names=[key])[key]
            if frames.ndim == 2:
                frames = frames[..., None]
    except DataFileError:
        raise
    except (OSError, ValueError, TypeError, KeyError,
            NotImplementedError) as e:
        raise DataFileError(path, f'cannot read {key!r} ({e})') from e
    if frames.ndim != 3 or not 0 <= frame_index < frames.shape[2]:
        raise DataFileError(
            path, f'frame index {frame_index} out of range for {key} of '
            f'shape {frames.shape}')
    return (frames[:, :, frame_index] > 0).astype(np.uint8)


@contextlib.contextmanager
def _open_video(path: str) -> Iterator[cv2.VideoCapture]:
    """An opened ``cv2.VideoCapture``, released afterwards; a missing or
    unopenable file is a :class:`DataFileError`."""
    if not osp.isfile(path):
        raise DataFileError(path, 'video file does not exist')
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            raise DataFileError(path, 'OpenCV cannot open the video')
        yield cap
    finally:
        cap.release()


def decode_video(path: str) -> Tuple[int, np.ndarray]:
    """Every frame of a video file, read in order.

    Returns:
        tuple: the container's frame count (``CAP_PROP_FRAME_COUNT``, what
        ``mmcv.VideoReader`` reports) and the decoded frames ``(N, H, W,
        3)`` uint8 BGR (N may be below the count where the last frames do
        not decode).

    Raises:
        DataFileError: missing file, not openable, or no frame decodes.
    """
    frames = []
    with _open_video(path) as cap:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    if not frames:
        raise DataFileError(path, 'no frame of the video decodes')
    return count, np.stack(frames)


def probe_video(path: str) -> int:
    """Number of frames of a video file, checking that it decodes.

    Raises:
        DataFileError: missing file, not openable by OpenCV, no frame count
            or first frame not decodable.
    """
    with _open_video(path) as cap:
        num = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, _ = cap.read()
    if num <= 0 or not ok:
        raise DataFileError(path, f'video does not decode (frame count '
                            f'{num}, first frame read ok: {ok})')
    return num


def count_frame_files(frame_dir: str, filename_tmpl: str) -> int:
    """Number of consecutive 1-based frame files ``filename_tmpl.format(i)``
    in ``frame_dir``.

    Raises:
        DataFileError: missing folder, no frame 1, or a gap (frame ``n + 1``
            missing while ``n + 2`` exists).
    """
    if not osp.isdir(frame_dir):
        raise DataFileError(frame_dir, 'frame folder does not exist')
    names = set(os.listdir(frame_dir))
    num = 0
    while filename_tmpl.format(num + 1) in names:
        num += 1
    if num == 0:
        raise DataFileError(
            frame_dir, f'no frame {filename_tmpl.format(1)!r} in the folder')
    if filename_tmpl.format(num + 2) in names:
        raise DataFileError(
            frame_dir, f'frame {filename_tmpl.format(num + 1)!r} is missing '
            'but later frames exist')
    return num


def check_frame_file(path: str) -> None:
    """Check that a frame file exists and OpenCV decodes it.

    Raises:
        DataFileError: missing file, or an image that does not decode.
    """
    if not osp.isfile(path):
        raise DataFileError(path, 'frame file does not exist')
    if cv2.imread(path, cv2.IMREAD_COLOR) is None:
        raise DataFileError(
            path, 'frame image does not decode (corrupt, truncated or '
            'not an image)')


def check_video_frames(path: str, frame_inds: Sequence[int]) -> None:
    """Check that the frames ``frame_inds`` (0-based) of a video decode.

    Raises:
        DataFileError: missing or unopenable file, or the first frame of
            ``frame_inds`` that does not decode.
    """
    with _open_video(path) as cap:
        num = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        for ind in sorted({int(i) for i in frame_inds}):
            cap.set(cv2.CAP_PROP_POS_FRAMES, ind)
            ok, _ = cap.read()
            if not ok:
                raise DataFileError(
                    path, f'frame {ind} (0-based) does not decode (the '
                    f'video claims {num} frames)')
