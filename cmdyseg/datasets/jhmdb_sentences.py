# Copyright (c) cmdyseg contributors. All rights reserved.
"""J-HMDB Sentences (Gavrilyuk et al. 2018): test set only."""
import csv
import os
import os.path as osp
from collections import Counter
from typing import Dict, List, Tuple

from cmdyseg.registry import DATASETS
from cmdyseg.utils.errors import InvalidInputError
from .base_refer_dataset import (BaseReferSegDataset, check_filename_tmpl,
                                 normalize_sentence)
from .file_io import DataFileError, count_frame_files, puppet_mask_shape


def parse_jhmdb_annotation(path: str) -> Tuple[List[Dict], Dict]:
    """Parse ``jhmdb_annotation.txt`` (``video_id,query``).

    Queries are space-normalised (:func:`normalize_sentence`); a row
    repeating (video, sentence) case-insensitively is dropped.

    Returns:
        tuple[list[dict], dict]: rows ``dict(video_id, sentence, line)`` and
        counts ``rows``, ``kept``, ``duplicates_dropped``, ``spaces_fixed``.
    """
    stats = Counter(rows=0, kept=0, duplicates_dropped=0, spaces_fixed=0)
    rows, seen = [], set()
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header != ['video_id', 'query']:
            raise InvalidInputError(
                f"{path}:1: expected header 'video_id,query', "
                f'got {header}')
        for fields in reader:
            line = reader.line_num
            if not fields or not ''.join(fields).strip():
                continue
            if len(fields) < 2:
                raise InvalidInputError(
                    f'{path}:{line}: expected 2 fields, got '
                    f'{fields}')
            stats['rows'] += 1
            video_id = fields[0].strip()
            query = ','.join(fields[1:])
            sentence = normalize_sentence(query)
            if not video_id or not sentence:
                raise InvalidInputError(
                    f'{path}:{line}: empty video id or query')
            if sentence != query:
                stats['spaces_fixed'] += 1
            key = (video_id, sentence.lower())
            if key in seen:
                stats['duplicates_dropped'] += 1
                continue
            seen.add(key)
            rows.append(dict(video_id=video_id, sentence=sentence, line=line))
    stats['kept'] = len(rows)
    return rows, dict(stats)


def uniform_frame_ids(num_frames: int, num_samples: int) -> List[int]:
    """Deterministic uniform choice of 1-based frames: the centres of
    ``num_samples`` equal segments of ``[0, num_frames)`` (as mmaction2's
    test-time ``SampleFrames``), duplicates removed for short videos.

    >>> uniform_frame_ids(40, 3)
    [7, 21, 34]
    """
    if num_frames < 1 or num_samples < 1:
        raise InvalidInputError(
            f'need num_frames >= 1 and num_samples >= 1, got '
            f'{num_frames}, {num_samples}')
    ids = [(2 * k + 1) * num_frames // (2 * num_samples) + 1
           for k in range(num_samples)]
    return sorted(set(ids))


@DATASETS.register_module()
class JHMDBSentencesDataset(BaseReferSegDataset):
    """J-HMDB Sentences: 928 videos, one sentence and one actor each.

    Layout under ``data_root``::

        jhmdb_annotation.txt                           video_id,query
        Rename_Images/<action>/<vid>/<frame:05d>.png   frames, 1-based
        puppet_mask/<action>/<vid>/puppet_mask.mat     part_mask H x W x T

    The action folder of a video is found by listing ``Rename_Images``.
    A video has ``min(#frames, T)`` usable frames: trailing frames without
    a mask are dropped (and trailing masks without a frame). From those,
    ``num_frames_per_video`` annotated frames are chosen with
    :func:`uniform_frame_ids`; each is one sample (``instance_id='0'``,
    ``actor_action=-1``). The clip around it only uses usable frames.

    Args:
        ann_file (str): Defaults to ``'jhmdb_annotation.txt'``.
        data_prefix (dict): ``frame`` and ``mask`` roots, relative to
            ``data_root``.
        filename_tmpl (str): Frame names. Defaults to ``'{:05d}.png'``.
        mask_name (str): Defaults to ``'puppet_mask.mat'``.
        num_frames_per_video (int): Defaults to 3.
        split (str): Only ``'test'`` exists.
        on_missing (str): ``'error'`` or ``'skip'``.
        test_mode (bool): Defaults to True.
    """

    METAINFO = dict(dataset_name='jhmdb_sentences')
    PREFIX_KEYS = ('frame', 'mask')

    def __init__(self,
                 ann_file: str = 'jhmdb_annotation.txt',
                 data_prefix: dict = dict(
                     frame='Rename_Images', mask='puppet_mask'),
                 filename_tmpl: str = '{:05d}.png',
                 mask_name: str = 'puppet_mask.mat',
                 num_frames_per_video: int = 3,
                 split: str = 'test',
                 on_missing: str = 'error',
                 test_mode: bool = True,
                 **kwargs) -> None:
        name = type(self).__name__
        if split != 'test':
            raise InvalidInputError(
                f"{name}: split must be one of ('test',) "
                '(J-HMDB Sentences only has a test split), got '
                f'{split!r}')
        if isinstance(num_frames_per_video, bool) or not isinstance(
                num_frames_per_video, int) or num_frames_per_video < 1:
            raise InvalidInputError(
                f'{name}: num_frames_per_video must be an int '
                f'>= 1, got {num_frames_per_video!r}')
        check_filename_tmpl(name, filename_tmpl)
        if not isinstance(mask_name, str) or not mask_name:
            raise InvalidInputError(
                f'{name}: mask_name must be a file name, got '
                f'{mask_name!r}')
        self.split = split
        self.filename_tmpl = filename_tmpl
        self.mask_name = mask_name
        self.num_frames_per_video = num_frames_per_video
        self.stats: Dict[str, int] = {}
        super().__init__(
            ann_file=ann_file,
            data_prefix=data_prefix,
            on_missing=on_missing,
            test_mode=test_mode,
            **kwargs)

    def _action_of_videos(self) -> Dict[str, List[str]]:
        root = self.data_prefix['frame']
        if not osp.isdir(root):
            raise DataFileError(
                root, "frame folder does not exist (data_prefix['frame'], "
                'joined with data_root)')
        actions: Dict[str, List[str]] = {}
        for action in sorted(os.listdir(root)):
            folder = osp.join(root, action)
            if not osp.isdir(folder):
                continue
            for vid in os.listdir(folder):
                if osp.isdir(osp.join(folder, vid)):
                    actions.setdefault(vid, []).append(action)
        return actions

    def load_data_list(self) -> List[dict]:
        self.skipped = []
        rows, stats = parse_jhmdb_annotation(
            self._require_file(self.ann_file, 'ann_file'))
        stats = Counter(stats)
        stats.update(dropped_trailing_frames=0, dropped_trailing_masks=0)
        actions = self._action_of_videos()
        data_list = []
        progress = self._index_progress(len(rows), 'videos')
        for done, row in enumerate(rows):
            progress(done)
            vid = row['video_id']
            found = actions.get(vid, [])
            if len(found) > 1:
                raise InvalidInputError(
                    f'video {vid!r} is in several action '
                    f'folders of {self.data_prefix["frame"]}: '
                    f'{found}')
            try:
                if not found:
                    raise DataFileError(
                        osp.join(self.data_prefix['frame'], '*', vid),
                        'frame folder does not exist')
                frame_dir = osp.join(self.data_prefix['frame'], found[0], vid)
                mask_path = osp.join(self.data_prefix['mask'], found[0], vid,
                                     self.mask_name)
                num_images = count_frame_files(frame_dir, self.filename_tmpl)
                num_masks = puppet_mask_shape(mask_path)[2]
            except DataFileError as e:
                self._skip_or_raise(e, f'video {vid!r}')
                continue
            total = min(num_images, num_masks)
            stats['dropped_trailing_frames'] += num_images - total
            stats['dropped_trailing_masks'] += num_masks - total
            for frame_id in uniform_frame_ids(total,
                                              self.num_frames_per_video):
                data_list.append(
                    dict(
                        video_id=vid,
                        instance_id='0',
                        sentence=row['sentence'],
                        frame_id=frame_id,
                        actor_action=-1,
                        action=found[0],
                        mask_path=mask_path,
                        frame_dir=frame_dir,
                        filename_tmpl=self.filename_tmpl,
                        offset=1,
                        total_frames=total,
                        modality='RGB'))
        self.stats = dict(stats)
        self._log_summary(len(data_list), self.stats)
        return data_list
