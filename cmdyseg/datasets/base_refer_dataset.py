# Copyright (c) cmdyseg contributors. All rights reserved.
"""Common base of the referring video segmentation datasets."""
import logging
import os.path as osp
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from .file_io import DataFileError

try:  # cv2.error is what OpenCV raises on undecodable data
    from cv2 import error as _CVError
except ImportError:  # pragma: no cover - cv2 is a requirement
    _CVError = OSError

# Errors that mean "this sample's files are bad" when they come out of the
# pipeline (the mmaction2 decoders raise AssertionError / IndexError on a
# video that opens but does not decode, the readers here DataFileError).
_FILE_ERRORS = (OSError, AssertionError, IndexError, _CVError)


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
    ``on_missing`` behaves the same way in every dataset.

    Every ``data_info`` carries ``video_id`` (str), ``instance_id`` (str),
    ``sentence`` (str), ``frame_id`` (int, 1-based annotated frame),
    ``total_frames`` (int), ``actor_action`` (int, -1 if unknown),
    ``mask_path`` (str), ``modality='RGB'`` and either ``filename`` (a
    video) or ``frame_dir`` + ``filename_tmpl`` + ``offset=1`` (a folder of
    1-based frames), which is what mmaction2's ``OpenCVInit`` and
    ``RawFrameDecode`` read.

    Args:
        on_missing (str): What to do with a missing or corrupt video, frame
            folder or mask file. ``'error'`` (default): raise an error naming
            the file. ``'skip'``: warn, drop the samples that need it and
            count it. Files are checked when the dataset is built (their
            list is :attr:`skipped`, their number :attr:`num_skipped`); a file
            that only fails while a training sample is loaded is skipped too
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

    def __init__(self, *args, on_missing: str = 'error', **kwargs) -> None:
        if on_missing not in self.ON_MISSING:
            raise ValueError(f'on_missing must be one of {self.ON_MISSING}, '
                             f'got {on_missing!r}')
        data_prefix = kwargs.get('data_prefix', {})
        for key in self.PREFIX_KEYS:
            if key not in data_prefix:
                raise KeyError(f'{type(self).__name__}: data_prefix needs a '
                               f'{key!r} entry, got {data_prefix}')
        self.on_missing = on_missing
        self.skipped: List[Tuple[str, str]] = []
        self.num_skipped_at_load = 0
        super().__init__(*args, **kwargs)

    @property
    def num_skipped(self) -> int:
        """Number of missing/corrupt files skipped while indexing."""
        return len(self.skipped)

    def _join_root(self, path: Optional[str]) -> Optional[str]:
        """``path`` joined with ``data_root`` unless absolute or None."""
        if path is None or osp.isabs(path) or not self.data_root:
            return path
        return osp.join(self.data_root, path)

    def _skip_or_raise(self, err: DataFileError, what: str) -> None:
        """Raise ``err`` (``on_missing='error'``) or record it and warn."""
        if self.on_missing == 'error':
            raise err
        self.skipped.append((err.path, err.reason))
        warnings.warn(f'{type(self).__name__}: skipping {what}: {err}',
                      stacklevel=2)

    def _log_summary(self, num_samples: int, extra: Dict[str, int]) -> None:
        parts = ', '.join(f'{k}={v}' for k, v in extra.items())
        print_log(
            f'{type(self).__name__}: {num_samples} samples; '
            f'{self.num_skipped} files skipped; {parts}',
            logger='current')

    @staticmethod
    def _describe(data_info: dict) -> str:
        src = data_info.get('filename') or data_info.get('frame_dir')
        return (f"video {data_info.get('video_id')!r} frame "
                f"{data_info.get('frame_id')} (video: {src}, mask: "
                f"{data_info.get('mask_path')})")

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on sample ``idx``.

        Any error is re-raised as a ``RuntimeError`` whose message names the
        sample's video and mask files (the original error is chained). With
        ``on_missing='skip'`` and not in ``test_mode``, a file error
        (``OSError`` incl. :class:`DataFileError`, or the ``AssertionError``
        / ``IndexError`` / ``cv2.error`` of a video that does not decode)
        is warned about and counted in :attr:`num_skipped_at_load` instead,
        and ``None`` is returned, which makes :class:`BaseDataset` draw
        another sample.
        """
        data_info = self.get_data_info(idx)
        try:
            return self.pipeline(data_info)
        except Exception as e:
            msg = (f'{type(self).__name__}: cannot load sample {idx}, '
                   f'{self._describe(data_info)}: {type(e).__name__}: {e}')
            if (isinstance(e, _FILE_ERRORS) and self.on_missing == 'skip'
                    and not self.test_mode):
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
