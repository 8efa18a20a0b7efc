# Copyright (c) cmdyseg contributors. All rights reserved.
"""Common base of the referring video segmentation datasets."""
import logging
import os.path as osp
import time
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from cmdyseg.utils.errors import InvalidInputError
from .file_io import (DataFileError, check_frame_file, check_video_frames,
                      probe_video)

try:  # cv2.error is what OpenCV raises on undecodable data
    from cv2 import error as _CVError
except ImportError:  # pragma: no cover - cv2 is a requirement
    _CVError = OSError

# Errors that mean "this sample's files are bad" when they come out of the
# pipeline (the mmaction2 decoders raise AssertionError / IndexError on a
# video that opens but does not decode, the readers here DataFileError).
_FILE_ERRORS = (OSError, AssertionError, IndexError, _CVError)


def check_filename_tmpl(owner: str, filename_tmpl) -> str:
    """``filename_tmpl`` if it turns a 1-based frame number into a file name
    (``'{:05d}.jpg'.format(1)``), else a one-line ``ValueError``."""
    try:
        name = filename_tmpl.format(1)
        ok = isinstance(name, str) and name != filename_tmpl.format(2)
    except (AttributeError, IndexError, KeyError, ValueError, TypeError):
        ok = False
    if not ok:
        raise InvalidInputError(
            f'{owner}: filename_tmpl must be a str.format '
            "template of the frame number, e.g. '{:05d}.jpg', "
            f'got {filename_tmpl!r}')
    return filename_tmpl


def normalize_sentence(text: str) -> str:
    """Strip a query and collapse runs of white space into one space.

    Case and punctuation are kept as the annotator wrote them: the text
    encoder lower-cases and strips punctuation itself.
    """
    return ' '.join(text.split())


class BaseReferSegDataset(BaseDataset):
    """Base class: one sample = (video, sentence, annotated frame).

    Subclasses implement :meth:`load_data_list` and call
    :meth:`_skip_or_raise` for every missing/corrupt file they meet, so that
    ``on_missing`` behaves the same way in every dataset, and
    :meth:`_log_summary` with their counts: :meth:`full_init` logs them in
    one line with the number of samples the dataset serves (after
    ``filter_cfg`` and ``indices``). A long index logs its progress every
    :attr:`PROGRESS_INTERVAL_S` seconds (:meth:`_index_progress`).

    Every ``data_info`` carries ``video_id`` (str), ``instance_id`` (str),
    ``sentence`` (str), ``frame_id`` (int, 1-based annotated frame),
    ``total_frames`` (int), ``actor_action`` (int, -1 if unknown),
    ``mask_path`` (str), ``modality='RGB'`` and either ``filename`` (a
    video) or ``frame_dir`` + ``filename_tmpl`` + ``offset=1`` (a folder of
    1-based frames), which is what mmaction2's ``OpenCVInit`` and
    ``RawFrameDecode`` read.

    Args:
        on_missing (str): What to do with a missing or corrupt video, frame
            folder, frame file or mask file. ``'error'`` (default): raise a
            :class:`DataFileError` whose one-line message names the file and
            the sample(s) that need it (video id, annotated frame).
            ``'skip'``: warn, drop the samples that need it and count it.
            Files are checked when the dataset is built (their list is
            :attr:`skipped`, their number :attr:`num_skipped`); a file that
            only fails while a training sample is loaded is skipped too
            (another sample is drawn, :attr:`num_skipped_at_load` counts them
            in the current process), but in ``test_mode`` that still raises,
            since dropping a sample would change the evaluated set.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments
            (``ann_file``, ``data_root``, ``data_prefix``, ``pipeline``,
            ``test_mode``, ``metainfo`` ...).
    """

    ON_MISSING = ('error', 'skip')
    # keys a subclass needs in ``data_prefix`` (checked before indexing)
    PREFIX_KEYS: Tuple[str, ...] = ()
    #: Seconds between the progress lines of a long indexing run (a short
    #: one, e.g. a test set of a few videos, finishes before the first).
    PROGRESS_INTERVAL_S = 10.0

    def __init__(self, *args, on_missing: str = 'error', **kwargs) -> None:
        name = type(self).__name__
        if on_missing not in self.ON_MISSING:
            raise InvalidInputError(f'{name}: on_missing must be one of '
                                    f'{self.ON_MISSING}, got {on_missing!r}')
        data_prefix = kwargs.get('data_prefix', {})
        if not isinstance(data_prefix, dict):
            raise InvalidInputError(
                f'{name}: data_prefix must be a dict with the '
                f'keys {self.PREFIX_KEYS}, got {data_prefix!r}')
        for key in self.PREFIX_KEYS:
            if key not in data_prefix:
                raise InvalidInputError(
                    f'{name}: data_prefix needs a {key!r} '
                    f'entry (keys: {self.PREFIX_KEYS}), got '
                    f'{data_prefix}')
        self.on_missing = on_missing
        self.skipped: List[Tuple[str, str]] = []
        self.num_skipped_at_load = 0
        self._summary: Optional[Tuple[int, Dict[str, int]]] = None
        super().__init__(*args, **kwargs)

    @property
    def num_skipped(self) -> int:
        """Number of missing/corrupt files skipped while indexing."""
        return len(self.skipped)

    @staticmethod
    def _require_file(path: str, option: str) -> str:
        """``path`` if it is a file, else a :class:`DataFileError` that
        names it and the option it comes from."""
        if not osp.isfile(path):
            raise DataFileError(
                path, f'file does not exist (the dataset option {option}, '
                'joined with data_root)')
        return path

    def _join_root(self, path: Optional[str]) -> Optional[str]:
        """``path`` joined with ``data_root`` unless absolute or None."""
        if path is None or osp.isabs(path) or not self.data_root:
            return path
        return osp.join(self.data_root, path)

    def _skip_or_raise(self, err: DataFileError, what: str) -> None:
        """Raise ``err`` (``on_missing='error'``) or record it and warn.

        ``what`` names the sample(s) that need the file (e.g. ``"mask of
        video 'v1' frame 9"``); the raised error's message gets it too, so
        that it names the file and the sample in one line.
        """
        if self.on_missing == 'error':
            if getattr(err, 'sample_named', False):  # by an inner call
                raise err
            named = DataFileError(
                err.path, f'{err.reason} [{type(self).__name__}: {what}; '
                "on_missing='skip' skips it]")
            named.sample_named = True
            raise named from None
        self.skipped.append((err.path, err.reason))
        warnings.warn(
            f'{type(self).__name__}: skipping {what}: {err}', stacklevel=2)

    def _index_progress(self, total: int, unit: str):
        """A function ``done -> None`` to call while indexing ``total``
        ``unit``: it logs ``indexed done/total unit`` with the elapsed time
        and an ETA every :attr:`PROGRESS_INTERVAL_S` seconds."""
        start = time.monotonic()
        last = [start]

        def update(done: int) -> None:
            now = time.monotonic()
            if done >= total or now - last[0] < self.PROGRESS_INTERVAL_S:
                return
            last[0] = now
            elapsed = now - start
            eta = elapsed / max(done, 1) * (total - done)
            print_log(
                f'{type(self).__name__}: indexed {done}/{total} {unit} '
                f'({elapsed:.0f} s, ETA {eta:.0f} s)',
                logger='current')

        return update

    def _log_summary(self, num_samples: int, extra: Dict[str, int]) -> None:
        """Record the counts of :meth:`load_data_list` (``num_samples``
        indexed samples, ``extra`` named counts); :meth:`full_init` logs
        them once the samples the dataset serves are known (after
        ``filter_cfg`` and ``indices``)."""
        self._summary = (int(num_samples), dict(extra))

    def full_init(self) -> None:
        """mmengine's, then the log line ``<Class>: N samples; K files
        skipped; counts...``, N being what the dataset serves."""
        if self._fully_initialized:
            return
        super().full_init()
        if self._summary is None:
            return
        indexed, extra = self._summary
        num = len(self)
        used = f'{num} samples'
        if num != indexed:
            used += f' (of {indexed} indexed'
            if self._indices is not None:
                used += f'; indices={self._indices}'
            used += ')'
        parts = ', '.join(f'{k}={v}' for k, v in extra.items())
        print_log(
            f'{type(self).__name__}: {used}; {self.num_skipped} files '
            f'skipped' + (f'; {parts}' if parts else ''),
            logger='current')

    @staticmethod
    def _describe(data_info: dict) -> str:
        src = data_info.get('filename') or data_info.get('frame_dir')
        return (f"video {data_info.get('video_id')!r} frame "
                f"{data_info.get('frame_id')} (video: {src}, mask: "
                f"{data_info.get('mask_path')})")

    @staticmethod
    def _sample_name(idx: int, data_info: dict) -> str:
        parts = [f"video {data_info.get('video_id')!r}"]
        if 'frame_id' in data_info:
            parts.append(f"annotated frame {data_info['frame_id']}")
        if 'instance_id' in data_info:
            parts.append(f"instance {data_info['instance_id']}")
        return f"sample {idx} ({', '.join(parts)})"

    @staticmethod
    def _find_bad_file(err: Exception,
                       data_info: dict) -> Optional[DataFileError]:
        """The :class:`DataFileError` behind a pipeline error, if a file of
        the sample is at fault.

        The readers of this package raise one themselves; mmaction2's
        decoders do not (a corrupt frame file ends as a ``cv2.error`` or an
        ``AttributeError`` on ``None`` deep inside mmcv, a video that does
        not decode as an ``IndexError``), so the clip's frames are checked
        one by one to find the file (or video frame) that fails.
        """
        if isinstance(err, DataFileError):
            return err
        inds = data_info.get('frame_inds')
        try:
            if data_info.get('frame_dir') is not None and inds is not None:
                offset = int(data_info.get('offset', 0))
                for ind in sorted({int(i) for i in inds}):
                    check_frame_file(
                        osp.join(
                            data_info['frame_dir'],
                            data_info['filename_tmpl'].format(ind + offset)))
            elif data_info.get('filename') is not None:
                probe_video(data_info['filename'])
                if inds is not None:
                    check_video_frames(data_info['filename'], inds)
                if isinstance(err, _FILE_ERRORS):
                    return DataFileError(
                        data_info['filename'], 'video does not decode '
                        f'({type(err).__name__}: {err})')
        except DataFileError as found:
            return found
        if isinstance(err, OSError) and err.filename:
            return DataFileError(
                err.filename, f'{type(err).__name__}: '
                f'{err.strerror or err}')
        return None

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on sample ``idx``.

        An error caused by a file of the sample (a frame file, the video or
        the mask; see :meth:`_find_bad_file`) is raised as a
        :class:`DataFileError` whose one-line message names the file and the
        sample (index, video id, frame, instance), without a chained
        traceback. With ``on_missing='skip'`` and not in ``test_mode`` it is
        warned about and counted in :attr:`num_skipped_at_load` instead, and
        ``None`` is returned, which makes :class:`BaseDataset` draw another
        sample. Any other error is re-raised as a ``RuntimeError`` naming
        the sample's files, the original error chained.
        """
        data_info = self.get_data_info(idx)
        try:
            return self.pipeline(data_info)
        except Exception as e:
            name = type(self).__name__
            bad = self._find_bad_file(e, data_info)
            skip = self.on_missing == 'skip' and not self.test_mode
            if bad is not None:
                err = DataFileError(
                    bad.path, f'{bad.reason} [{name}: '
                    f'{self._sample_name(idx, data_info)}]')
                if skip:
                    self.num_skipped_at_load += 1
                    warnings.warn(f'{err} (skipped)', stacklevel=2)
                    return None
                raise err from None
            msg = (f'{name}: cannot load sample {idx}, '
                   f'{self._describe(data_info)}: {type(e).__name__}: {e}')
            if isinstance(e, _FILE_ERRORS) and skip:
                self.num_skipped_at_load += 1
                warnings.warn(msg + ' (skipped)', stacklevel=2)
                return None
            raise RuntimeError(msg) from e

    def _serialize_data(self):
        """mmengine's version fails on an empty list (everything skipped)."""
        if not self.data_list:
            print_log(
                f'{type(self).__name__}: the dataset is empty',
                logger='current',
                level=logging.WARNING)
            return np.zeros(0, np.uint8), np.zeros(0, np.int64)
        return super()._serialize_data()
