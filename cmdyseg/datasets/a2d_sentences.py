# Copyright (c) cmdyseg contributors. All rights reserved.
"""A2D Sentences (Gavrilyuk et al. 2018) in its distributed layout."""
import csv
import os
import os.path as osp
import re
from collections import Counter
from typing import Dict, List, Optional, Tuple

from cmdyseg.registry import DATASETS
from cmdyseg.utils.errors import InvalidInputError
from .base_refer_dataset import (BaseReferSegDataset, check_filename_tmpl,
                                 normalize_sentence)
from .file_io import (DataFileError, count_frame_files, probe_video,
                      read_a2d_frame_index)

A2D_ACTORS = ('adult', 'baby', 'ball', 'bird', 'car', 'cat', 'dog')
A2D_ACTIONS = ('climbing', 'crawling', 'eating', 'flying', 'jumping',
               'rolling', 'running', 'walking', 'none')

_INT_RE = re.compile(r'^\d+$')
_COPY_RE = re.compile(r'^(\d+)\s*\(copy\)$')


def parse_a2d_annotation(path: str,
                         copy_instance: str = 'drop') -> Tuple[List, Dict]:
    """Parse ``a2d_annotation.txt`` (``video_id,instance_id,query``).

    Quirks of the real file that are handled:

    - an instance id written ``'1 (copy)'`` (video ``T6bNPuKV-wY``, which
      also has a different sentence for instance ``1``): dropped
      (``copy_instance='drop'``, the default, since which actor it refers to
      is unknown) or read as instance 1 (``'keep'``);
    - leading, trailing and doubled spaces in queries: collapsed
      (:func:`normalize_sentence`); case and punctuation are kept;
    - duplicate sentences: a row repeating (video, instance, sentence) --
      compared case-insensitively after space normalisation -- is dropped;
      the same sentence for *different* instances of a video (13 pairs in
      the real file) is kept, each row pointing at its own instance.

    Args:
        path (str): The annotation file.
        copy_instance (str): ``'drop'`` or ``'keep'``, see above.

    Returns:
        tuple[list[dict], dict]: rows ``dict(video_id, instance_id (int),
        sentence, line)`` in file order, and counts ``rows``, ``kept``,
        ``copy_dropped``, ``copy_kept``, ``duplicates_dropped``,
        ``spaces_fixed``.

    Raises:
        ValueError: bad header, short row, empty query or an instance id
            that is not an integer, naming file and line.
    """
    if copy_instance not in ('drop', 'keep'):
        raise InvalidInputError(f"copy_instance must be 'drop' or 'keep', got "
                                f'{copy_instance!r}')
    stats = Counter(
        rows=0,
        kept=0,
        copy_dropped=0,
        copy_kept=0,
        duplicates_dropped=0,
        spaces_fixed=0)
    rows, seen = [], set()
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header != ['video_id', 'instance_id', 'query']:
            raise InvalidInputError(
                f'{path}:1: expected header '
                f"'video_id,instance_id,query', got {header}")
        for fields in reader:
            line = reader.line_num
            if not fields or not ''.join(fields).strip():
                continue
            if len(fields) < 3:
                raise InvalidInputError(
                    f'{path}:{line}: expected 3 fields, got '
                    f'{fields}')
            stats['rows'] += 1
            video_id, raw_inst = fields[0].strip(), fields[1].strip()
            query = ','.join(fields[2:])  # an unquoted comma in the query
            if _INT_RE.match(raw_inst):
                instance_id = int(raw_inst)
            elif _COPY_RE.match(raw_inst):
                if copy_instance == 'drop':
                    stats['copy_dropped'] += 1
                    continue
                stats['copy_kept'] += 1
                instance_id = int(_COPY_RE.match(raw_inst).group(1))
            else:
                raise InvalidInputError(
                    f'{path}:{line}: instance_id {raw_inst!r} '
                    'is not an integer')
            sentence = normalize_sentence(query)
            if not sentence:
                raise InvalidInputError(f'{path}:{line}: empty query')
            if sentence != query:
                stats['spaces_fixed'] += 1
            key = (video_id, instance_id, sentence.lower())
            if key in seen:
                stats['duplicates_dropped'] += 1
                continue
            seen.add(key)
            rows.append(
                dict(
                    video_id=video_id,
                    instance_id=instance_id,
                    sentence=sentence,
                    line=line))
    stats['kept'] = len(rows)
    return rows, dict(stats)


def parse_a2d_videoset(path: str) -> Dict[str, Dict]:
    """Parse ``Release/videoset.csv`` (no header).

    Columns: vid, label, start_time, end_time, height, width, total_frames,
    annotated_frames, subset (0 = train, 1 = test).

    Returns:
        dict: ``vid -> dict(label, height, width, total_frames,
        annotated_frames, subset)`` (ints).
    """
    videos = {}
    with open(path, newline='', encoding='utf-8') as f:
        for line, fields in enumerate(csv.reader(f), 1):
            if not fields or not ''.join(fields).strip():
                continue
            if len(fields) != 9:
                raise InvalidInputError(
                    f'{path}:{line}: expected 9 columns, got '
                    f'{len(fields)}: {fields}')
            vid = fields[0].strip()
            try:
                info = dict(
                    label=int(fields[1]),
                    height=int(fields[4]),
                    width=int(fields[5]),
                    total_frames=int(fields[6]),
                    annotated_frames=int(fields[7]),
                    subset=int(fields[8]))
            except ValueError as e:
                raise InvalidInputError(f'{path}:{line}: {e}') from e
            if vid in videos:
                raise InvalidInputError(f'{path}:{line}: video {vid!r} listed '
                                        'twice')
            videos[vid] = info
    return videos


def read_id_list(path: str) -> List[str]:
    """One id a line (``a2d_missed_videos.txt``); blank lines ignored."""
    with open(path, encoding='utf-8') as f:
        return [s.strip() for s in f if s.strip()]


@DATASETS.register_module()
class A2DSentencesDataset(BaseReferSegDataset):
    """A2D Sentences: one sample per (video, instance sentence, annotated
    frame in which that instance appears).

    Layout under ``data_root`` (as distributed)::

        a2d_annotation.txt                 video_id,instance_id,query
        a2d_missed_videos.txt              excluded videos
        Release/videoset.csv               split (subset column)
        Release/clips320H/<vid>.mp4        videos
        a2d_annotation_with_instances/<vid>/<frame:05d>.h5   masks
        <frame_dir>/<vid>/<frame:05d>.jpg  optional pre-extracted frames
                                           (tools/dataset_converters/
                                           a2d_extract_frames.py)

    The annotated frames of a video are its ``.h5`` files. A frame whose
    ``instance`` key does not list the sentence's instance is not a sample.
    Glitches of the real mask files:

    - an instance listed twice in one frame: ``duplicate_instance='first'``
      (default, what later work does) takes the first mask row,
      ``'union'`` ORs all its rows;
    - more masks than instance ids: row ``i`` of ``reMask`` belongs to
      ``instance[i]``; the extra rows have no id, no sentence can refer to
      them, and they are ignored;
    - an instance id whose row is missing from ``reMask`` (fewer masks than
      ids): that (instance, frame) is not a sample.

    Each is counted in :attr:`stats`. ``actor_action`` comes from the
    ``id`` key (tens = actor code, units = action code, see ``metainfo``);
    -1 when the file has no code for the instance.

    Args:
        ann_file (str): Sentence file. Defaults to ``'a2d_annotation.txt'``.
        videoset_file (str): Split file. Defaults to
            ``'Release/videoset.csv'``.
        missed_file (str): Videos to exclude. Defaults to
            ``'a2d_missed_videos.txt'``.
        data_prefix (dict): ``video`` (folder of ``<vid>.mp4``) and ``mask``
            (folder of ``<vid>/<frame>.h5``), relative to ``data_root``.
        frame_dir (str, optional): Folder of pre-extracted frames
            (``<vid>/<frame:05d>.jpg``, 1-based). When given, samples carry
            ``frame_dir``/``filename_tmpl``/``offset`` for mmaction2's
            ``RawFrameDecode`` instead of ``filename`` for ``OpenCVInit``.
        filename_tmpl (str): Frame file names. Defaults to ``'{:05d}.jpg'``.
        split (str): ``'train'`` (subset 0) or ``'test'`` (subset 1).
        copy_instance (str): See :func:`parse_a2d_annotation`.
        duplicate_instance (str): ``'first'`` or ``'union'``, see above.
        on_missing (str): ``'error'`` or ``'skip'``, see
            :class:`BaseReferSegDataset`.
        metainfo (dict, optional): Overrides ``actors`` / ``actions`` (codes
            are 1-based positions in those tuples).
    """

    METAINFO = dict(actors=A2D_ACTORS, actions=A2D_ACTIONS)
    SPLITS = dict(train=0, test=1)
    DUPLICATE_INSTANCE = ('first', 'union')
    COPY_INSTANCE = ('drop', 'keep')
    PREFIX_KEYS = ('video', 'mask')

    def __init__(self,
                 ann_file: str = 'a2d_annotation.txt',
                 videoset_file: str = 'Release/videoset.csv',
                 missed_file: Optional[str] = 'a2d_missed_videos.txt',
                 data_prefix: dict = dict(
                     video='Release/clips320H',
                     mask='a2d_annotation_with_instances'),
                 frame_dir: Optional[str] = None,
                 filename_tmpl: str = '{:05d}.jpg',
                 split: str = 'train',
                 copy_instance: str = 'drop',
                 duplicate_instance: str = 'first',
                 on_missing: str = 'error',
                 **kwargs) -> None:
        name = type(self).__name__
        for option, value, valid in (
            ('split', split, tuple(self.SPLITS)),
            ('duplicate_instance', duplicate_instance,
             self.DUPLICATE_INSTANCE),
            ('copy_instance', copy_instance, self.COPY_INSTANCE),
        ):
            if value not in valid:
                raise InvalidInputError(
                    f'{name}: {option} must be one of {valid}, '
                    f'got {value!r}')
        if frame_dir is not None and not isinstance(frame_dir, str):
            raise InvalidInputError(
                f'{name}: frame_dir must be a folder path or '
                f'None, got {frame_dir!r}')
        check_filename_tmpl(name, filename_tmpl)
        self.split = split
        self.videoset_file = videoset_file
        self.missed_file = missed_file
        self.frame_dir = frame_dir
        self.filename_tmpl = filename_tmpl
        self.copy_instance = copy_instance
        self.duplicate_instance = duplicate_instance
        self.stats: Dict[str, int] = {}
        super().__init__(
            ann_file=ann_file,
            data_prefix=data_prefix,
            on_missing=on_missing,
            **kwargs)

    # ------------------------------------------------------------------
    def decode_actor_action(self,
                            code: int) -> Tuple[Optional[str], Optional[str]]:
        """``(actor name, action name)`` of an actor-action code, None for
        a part outside ``metainfo`` (or for code -1)."""
        if code is None or code < 0:
            return None, None
        actors, actions = self.metainfo['actors'], self.metainfo['actions']
        actor, action = divmod(int(code), 10)
        return (actors[actor - 1] if 1 <= actor <= len(actors) else None,
                actions[action - 1] if 1 <= action <= len(actions) else None)

    def _video_source(self, vid: str) -> Dict:
        """Where the frames of ``vid`` are, and how many there are."""
        if self.frame_dir is not None:
            folder = osp.join(self._join_root(self.frame_dir), vid)
            num = count_frame_files(folder, self.filename_tmpl)
            return dict(
                frame_dir=folder,
                filename_tmpl=self.filename_tmpl,
                offset=1,
                total_frames=num)
        path = osp.join(self.data_prefix['video'], vid + '.mp4')
        return dict(filename=path, total_frames=probe_video(path))

    def _mask_frames(self, vid: str) -> List[Tuple[int, str, Dict]]:
        """``(frame_id, path, index)`` of every readable mask file of
        ``vid``; unreadable ones go through ``on_missing``."""
        folder = osp.join(self.data_prefix['mask'], vid)
        if not osp.isdir(folder):
            raise DataFileError(folder, 'mask folder does not exist')
        frames = []
        for name in sorted(os.listdir(folder)):
            stem, ext = osp.splitext(name)
            if ext != '.h5':
                continue
            if not stem.isdigit():
                raise DataFileError(
                    osp.join(folder, name), 'mask file name is not '
                    '<frame number>.h5')
            path = osp.join(folder, name)
            try:
                index = read_a2d_frame_index(path)
            except DataFileError as e:
                self._skip_or_raise(
                    e, f'mask of video {vid!r} frame {int(stem)}')
                continue
            frames.append((int(stem), path, index))
        if not frames:
            raise DataFileError(folder, 'no .h5 mask file in the folder')
        return frames

    def load_data_list(self) -> List[dict]:
        """Index the split: read the sentences, the split file, and the
        instance ids of every mask file of the split's videos."""
        self.skipped = []
        rows, ann_stats = parse_a2d_annotation(
            self._require_file(self.ann_file, 'ann_file'), self.copy_instance)
        videoset_path = self._require_file(
            self._join_root(self.videoset_file), 'videoset_file')
        videos = parse_a2d_videoset(videoset_path)
        missed = set()
        if self.missed_file:
            missed = set(
                read_id_list(
                    self._require_file(
                        self._join_root(self.missed_file), 'missed_file')))
        stats = Counter(ann_stats)
        stats.update(
            missed_rows=0,
            other_split_rows=0,
            absent_instance_frames=0,
            duplicate_instance_frames=0,
            frames_with_extra_masks=0,
            instance_without_mask=0)
        wanted = self.SPLITS[self.split]
        # reading every mask file of the split is what takes long (minutes
        # for the real A2D): report it per video
        progress = self._index_progress(
            len({
                r['video_id']
                for r in rows if r['video_id'] not in missed
                and videos.get(r['video_id'], {}).get('subset') == wanted
            }), f'{self.split} videos')
        cache: Dict[str, Optional[Tuple[Dict, List]]] = {}
        extra_counted = set()
        data_list = []
        for row in rows:
            vid = row['video_id']
            if vid in missed:
                stats['missed_rows'] += 1
                continue
            if vid not in videos:
                raise InvalidInputError(
                    f'{self.ann_file}:{row["line"]}: video {vid!r} is not '
                    f'in {videoset_path}')
            if videos[vid]['subset'] != wanted:
                stats['other_split_rows'] += 1
                continue
            if vid not in cache:
                try:
                    cache[vid] = (self._video_source(vid),
                                  self._mask_frames(vid))
                except DataFileError as e:
                    self._skip_or_raise(e, f'video {vid!r}')
                    cache[vid] = None
                progress(len(cache))
            if cache[vid] is None:
                continue
            source, frames = cache[vid]
            inst = row['instance_id']
            for frame_id, path, index in frames:
                ids = index['instance_ids']
                if index['num_masks'] > len(ids) and path not in extra_counted:
                    extra_counted.add(path)
                    stats['frames_with_extra_masks'] += 1
                rows_of_inst = [i for i, x in enumerate(ids) if x == inst]
                if not rows_of_inst:
                    stats['absent_instance_frames'] += 1
                    continue
                if len(rows_of_inst) > 1:
                    stats['duplicate_instance_frames'] += 1
                    if self.duplicate_instance == 'first':
                        rows_of_inst = rows_of_inst[:1]
                rows_of_inst = [
                    i for i in rows_of_inst if i < index['num_masks']
                ]
                if not rows_of_inst:
                    stats['instance_without_mask'] += 1
                    continue
                if frame_id > source['total_frames']:
                    self._skip_or_raise(
                        DataFileError(
                            source.get('filename') or source['frame_dir'],
                            f'has {source["total_frames"]} frames but frame '
                            f'{frame_id} is annotated ({path})'),
                        f'video {vid!r} frame {frame_id}')
                    continue
                codes = index['actor_actions']
                first = rows_of_inst[0]
                data_list.append(
                    dict(
                        video_id=vid,
                        instance_id=str(inst),
                        sentence=row['sentence'],
                        frame_id=frame_id,
                        actor_action=int(codes[first])
                        if first < len(codes) else -1,
                        mask_path=path,
                        mask_indices=rows_of_inst,
                        modality='RGB',
                        **source))
        self.stats = dict(stats)
        self._log_summary(len(data_list), self.stats)
        return data_list
