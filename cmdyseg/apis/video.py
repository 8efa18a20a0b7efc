# Copyright (c) cmdyseg contributors. All rights reserved.
"""Reading the frames of a video for inference.

A video is one of

- a path to a video file (anything OpenCV's FFmpeg backend decodes: mp4,
  avi, webm, ...);
- a path to a folder of frames: the image files in it (``.jpg``, ``.jpeg``,
  ``.png``, ``.bmp``, ``.tif``, ``.tiff``, ``.webp``) in natural order
  (``2.png`` before ``10.png``; zero-padded names sort the same either way);
- a sequence of ``(H, W, 3)`` uint8 RGB arrays, or one ``(T, H, W, 3)``
  uint8 array.

:class:`VideoSource` checks the input when it is created (the path exists,
the first frame decodes) and yields RGB frames each time it is iterated,
so that a long video is never held in memory at its original size.
"""
import os
import os.path as osp
import re
from typing import Iterator, List, Optional, Sequence, Union

import cv2
import numpy as np

from cmdyseg.utils.errors import UserInputError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')
#: Frame rate assumed for a folder of frames or a list of arrays.
DEFAULT_FPS = 25.0

VideoInput = Union[str, os.PathLike, np.ndarray, Sequence[np.ndarray]]


class VideoReadError(UserInputError, ValueError):
    """A video (file, folder of frames or arrays) cannot be read."""


def _natural_key(name: str):
    return [int(p) if p.isdigit() else p.lower()
            for p in re.split(r'(\d+)', name)]


def is_single_video(obj) -> bool:
    """True if ``obj`` is one video (a path, a 4-D array or a sequence of
    frame arrays), False if it is a sequence of videos."""
    if isinstance(obj, (str, os.PathLike, np.ndarray)):
        return True
    if isinstance(obj, (list, tuple)):
        return len(obj) > 0 and all(
            isinstance(x, np.ndarray) and x.ndim == 3 for x in obj)
    return False


class VideoSource:
    """Frames of one video, as RGB ``(H, W, 3)`` uint8 arrays.

    Args:
        video (str | PathLike | np.ndarray | Sequence[np.ndarray]): See the
            module documentation.
        fps (float, optional): Frame rate to report; by default the file's
            own (``CAP_PROP_FPS``), or :data:`DEFAULT_FPS` for frames.

    Attributes:
        name (str): The path, or ``'<arrays>'``.
        fps (float): Frames per second.
        frame_shape (tuple[int, int]): ``(H, W)`` of the first frame; every
            frame must have it.

    Raises:
        FileNotFoundError: The path does not exist.
        VideoReadError: Nothing decodes (not a video, an empty folder, a
            broken image, frames of the wrong type).
    """

    def __init__(self, video: VideoInput, fps: Optional[float] = None):
        self._arrays: Optional[List[np.ndarray]] = None
        self._files: Optional[List[str]] = None
        self._path: Optional[str] = None
        file_fps = None
        if isinstance(video, (str, os.PathLike)):
            path = os.fspath(video)
            self.name = path
            if not osp.exists(path):
                raise FileNotFoundError(f'video not found: {path}')
            if osp.isdir(path):
                files = sorted(
                    (f for f in os.listdir(path)
                     if f.lower().endswith(IMAGE_EXTENSIONS)
                     and osp.isfile(osp.join(path, f))),
                    key=_natural_key)
                if not files:
                    raise VideoReadError(
                        f'{path}: the video folder holds no image files '
                        f'({", ".join(IMAGE_EXTENSIONS)})')
                self._files = [osp.join(path, f) for f in files]
            else:
                self._path = path
                cap = cv2.VideoCapture(path)
                try:
                    if not cap.isOpened():
                        raise VideoReadError(
                            f'{path}: cannot open the video: not a video '
                            'file OpenCV can decode')
                    file_fps = cap.get(cv2.CAP_PROP_FPS)
                finally:
                    cap.release()
        else:
            self.name = '<arrays>'
            frames = list(video) if not isinstance(video, np.ndarray) \
                else list(video) if video.ndim == 4 else [video]
            if not frames:
                raise VideoReadError('the video has no frames')
            for i, frame in enumerate(frames):
                if not isinstance(frame, np.ndarray) or frame.ndim != 3 or \
                        frame.shape[2] != 3 or frame.dtype != np.uint8:
                    raise VideoReadError(
                        f'frame {i} must be an (H, W, 3) uint8 RGB array, '
                        f'got {type(frame).__name__} '
                        f'{getattr(frame, "shape", "")} '
                        f'{getattr(frame, "dtype", "")}')
            self._arrays = frames
        if fps is not None:
            if not fps > 0:
                raise ValueError(f'fps must be positive, got {fps}')
            self.fps = float(fps)
        elif file_fps is not None and np.isfinite(file_fps) and file_fps > 0:
            self.fps = float(file_fps)
        else:
            self.fps = DEFAULT_FPS
        frames_iter = iter(self)
        first = next(frames_iter, None)
        frames_iter.close()  # releases the capture now
        if first is None:
            raise VideoReadError(f'{self.name}: no frame of the video '
                                 'decodes')
        self.frame_shape = tuple(first.shape[:2])

    @property
    def frame_count_hint(self) -> Optional[int]:
        """Number of frames without decoding them: exact for frames and
        arrays, the container's claim for a file (None if it has none)."""
        if self._arrays is not None:
            return len(self._arrays)
        if self._files is not None:
            return len(self._files)
        cap = cv2.VideoCapture(self._path)
        try:
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
        return count if count > 0 else None

    def _frame_name(self, index: int) -> str:
        """``<file>: frame i of video <folder>`` for a folder of frames,
        ``<video>: frame i`` otherwise: every error about one frame names
        the file and the frame."""
        if self._files is not None:
            return f'{self._files[index]}: frame {index} of video {self.name}'
        return f'{self.name}: frame {index}'

    def _check(self, frame: np.ndarray, index: int) -> np.ndarray:
        if hasattr(self, 'frame_shape') and \
                frame.shape[:2] != self.frame_shape:
            raise VideoReadError(
                f'{self._frame_name(index)} has size {frame.shape[:2]}, the '
                f'first frame {self.frame_shape}: all frames must have the '
                'same size')
        return frame

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._arrays is not None:
            for i, frame in enumerate(self._arrays):
                yield self._check(frame, i)
        elif self._files is not None:
            for i, file in enumerate(self._files):
                bgr = cv2.imread(file, cv2.IMREAD_COLOR)
                if bgr is None:
                    reason = 'does not decode (corrupt, truncated or not ' \
                        'an image)' if osp.isfile(file) else \
                        'was removed while the video was read'
                    raise VideoReadError(f'{self._frame_name(i)} {reason}')
                yield self._check(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), i)
        else:
            cap = cv2.VideoCapture(self._path)
            try:
                if not cap.isOpened():
                    raise VideoReadError(f'{self._path}: cannot open the '
                                         'video')
                i = 0
                while True:
                    ok, bgr = cap.read()
                    if not ok:
                        break
                    yield self._check(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), i)
                    i += 1
            finally:
                cap.release()

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.name!r}, '
                f'frame_shape={self.frame_shape}, fps={self.fps})')
