# Copyright (c) cmdyseg contributors. All rights reserved.
"""Ref-YouTube-VOS, Ref-DAVIS17 and MeViS in their distributed layouts.

The three benchmarks of referring video object segmentation that score a
(video, expression) on every listed frame with J&F. Their files, as the
authors distribute them (see ``docs`` and the parsers below):

- Ref-YouTube-VOS: ``meta_expressions/<split>/meta_expressions.json``
  (``videos -> vid -> {expressions: {exp_id: {exp, obj_id}}, frames}``),
  ``<split>/meta.json`` (object categories), ``<split>/JPEGImages`` and, for
  train, ``<split>/Annotations`` (palette PNGs, pixel value = object id);
- Ref-DAVIS17: DAVIS 2017 (``JPEGImages/480p``, ``Annotations/480p``,
  ``ImageSets/2017``) and four text files ``Davis17_<set>.txt`` of lines
  ``video obj_id "expression"``;
- MeViS: ``<split>/meta_expressions.json`` (``obj_id`` and ``anno_id``
  lists: an expression may refer to several objects), ``<split>/
  mask_dict.json`` (``anno_id -> per-frame COCO RLE or null``; absent for
  the ``valid`` split) and ``<split>/JPEGImages``.

Every dataset serves one of two kinds of samples (``sample_mode``):

- ``'frame'`` (training): one sample per (video, expression, listed frame),
  absent objects included (their mask is empty). ``get_data_info`` gives
  ``video_id``, ``exp_id``, ``sentence``, ``instance_id`` (object ids joined
  with ``'+'``), ``obj_ids``, ``mask_ids``, ``frame_id`` (1-based into the
  listed frames), ``total_frames``, ``frame_dir``, ``frame_names``,
  ``actor_action`` (-1), ``category``, ``anno_set``, ``modality`` and the
  mask of the frame: ``mask_path`` (+ ``missing_mask``) for the palette
  datasets, ``mask_rles`` (+ ``mask_path`` = ``mask_dict.json``) for MeViS.
  Pipelines: :class:`SampleReferClip`, :class:`LoadListedFrames`,
  :class:`LoadReferObjectMask`.
- ``'video'`` (test): one sample per video with all its expressions
  (``expressions``: dicts with ``exp_id``, ``sentence``, ``obj_ids``,
  ``mask_ids``, ``category``, ``anno_set``), ``has_gt`` and the masks'
  source (``mask_paths`` or ``object_rles``). Pipelines:
  :class:`LoadListedFrames`, :class:`LoadVideoObjectMasks`; the test loop
  calls :func:`expression_gt` per expression.

Real data is large (Ref-YouTube-VOS gives ~390k frame samples, MeViS
more), so the serialized ``data_list`` holds only ``video_id``, ``exp_id``
and ``frame_id`` per sample; the per-video and per-expression fields (and
MeViS's masks, one pickled blob per annotation) live in dataset attributes
and are attached by :meth:`BaseRVOSDataset.get_data_info`.
"""
import json
import logging
import os
import os.path as osp
import pickle
import re
import warnings
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from cmdyseg.registry import DATASETS
from cmdyseg.utils.errors import InvalidInputError
from .base_refer_dataset import BaseReferSegDataset, normalize_sentence
from .file_io import DataFileError, check_frame_file

SAMPLE_MODES = ('frame', 'video')
MISSING_MASK = ('error', 'empty')
DAVIS_ANNO_SETS = ('annot1', 'annot1_full_video', 'annot2',
                   'annot2_full_video')
#: Encoding of each Ref-DAVIS17 text file (annotator 2 wrote latin-1).
DAVIS_ENCODINGS = dict(
    annot1='utf-8',
    annot1_full_video='utf-8',
    annot2='latin-1',
    annot2_full_video='latin-1')
#: Misspelt video names of the Ref-DAVIS17 text files -> DAVIS folder names
#: (the fixes of ReferFormer's ``convert_davis_to_ytvos.py``).
DAVIS_VIDEO_ALIASES = {
    'clasic-car': 'classic-car',
    'dog-scale': 'dogs-scale',
    'motor-bike': 'motorbike',
}

_DAVIS_LINE = re.compile(r'^(\S+)\s+(\d+)\s+"(.*)"$')
_INT_STR = re.compile(r'^\s*-?\d+\s*$')


# ---------------------------------------------------------------- parsers
def load_json(path: str, option: str = 'ann_file') -> Any:
    """Load a JSON file, turning every failure into a one-line
    :class:`DataFileError` that names it.

    Args:
        path (str): The file.
        option (str): The dataset option it comes from (for the message of
            a missing file).
    """
    if not osp.isfile(path):
        raise DataFileError(
            path, f'file does not exist (the dataset option {option}, '
            'joined with data_root)')
    try:
        with open(path, 'rb') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataFileError(
            path, f'not valid JSON (line {e.lineno} column {e.colno}: '
            f'{e.msg}); the file is corrupt or truncated') from None
    except UnicodeDecodeError as e:
        raise DataFileError(
            path, f'not UTF-8 JSON text ({e.reason} at byte '
            f'{e.start})') from None
    except OSError as e:
        raise DataFileError(path, f'cannot read ({e.strerror or e})') from e


class _Name(str):
    """A schema key (printed bare in key paths, unlike data keys)."""


def _where(keys: Sequence[Any]) -> str:
    """``videos -> 'abc' -> expressions -> '0'`` (data keys quoted)."""
    return ' -> '.join(k if isinstance(k, _Name) else repr(k) for k in keys)


_VIDEOS, _EXPS, _FRAMES = _Name('videos'), _Name('expressions'), _Name(
    'frames')


def _schema_error(path: str, keys: Sequence[Any], reason: str):
    return DataFileError(path, f'{_where(keys)}: {reason}' if keys else reason)


def _expect(value: Any, kind: type, path: str, keys: Sequence[Any]) -> Any:
    if not isinstance(value, kind):
        names = dict(dict='an object', list='a list', str='a string')
        raise _schema_error(
            path, keys, f'expected {names.get(kind.__name__, kind.__name__)}'
            f', got {type(value).__name__}')
    return value


def _get(obj: dict, key: str, path: str, keys: Sequence[Any]) -> Any:
    if key not in obj:
        raise _schema_error(path, keys,
                            f'no {key!r} (keys: {sorted(obj)[:10]})')
    return obj[key]


def _as_int(value: Any, path: str, keys: Sequence[Any]) -> int:
    """An object / annotation id: an int or a string of digits."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not (is_int or (isinstance(value, str) and _INT_STR.match(value))):
        raise _schema_error(path, keys,
                            f'{value!r} is not an integer object id')
    return int(value)


def _as_int_list(value: Any, path: str, keys: Sequence[Any]) -> List[int]:
    """A list of ids (a single id is read as a list of one); repeats
    dropped, order kept."""
    items = value if isinstance(value, list) else [value]
    out: List[int] = []
    for i, item in enumerate(items):
        num = _as_int(item, path, list(keys) + ([i] if items is value else []))
        if num not in out:
            out.append(num)
    return out


def _meta_videos(data: Any, path: str) -> Dict[str, dict]:
    _expect(data, dict, path, [])
    return _expect(_get(data, 'videos', path, []), dict, path, [_VIDEOS])


def _frame_list(video: dict, path: str, keys: List[Any]) -> List[str]:
    frames = _expect(
        _get(video, 'frames', path, keys), list, path, keys + [_FRAMES])
    for i, name in enumerate(frames):
        _expect(name, str, path, keys + [_FRAMES, i])
    if not frames:
        raise _schema_error(path, keys + [_FRAMES], 'no frame listed')
    return list(frames)


def _expressions(video: dict, path: str, keys: List[Any], stats: Counter,
                 id_keys: Sequence[str]) -> List[Dict]:
    """The ``expressions`` of one video of a meta_expressions.json:
    ``exp_id``, ``sentence`` and, for each of ``id_keys``, the ids (list of
    int) or None when the key is absent."""
    exps = _expect(
        _get(video, 'expressions', path, keys), dict, path, keys + [_EXPS])
    out = []
    for exp_id, exp in exps.items():
        where = keys + [_EXPS, exp_id]
        _expect(exp, dict, path, where)
        text = _expect(
            _get(exp, 'exp', path, where), str, path, where + [_Name('exp')])
        sentence = normalize_sentence(text)
        stats['expressions'] += 1
        if not sentence:
            stats['empty_expressions_dropped'] += 1
            warnings.warn(f'{path}: {_where(where)}: empty expression '
                          '(dropped)')
            continue
        if sentence != text:
            stats['spaces_fixed'] += 1
        info = dict(exp_id=str(exp_id), sentence=sentence)
        for key in id_keys:
            if key not in exp:
                info[key] = None
            else:
                info[key] = _as_int_list(exp[key], path, where + [_Name(key)])
        out.append(info)
    return out


def parse_ytvos_meta_expressions(path: str) -> Tuple[Dict[str, Dict], Dict]:
    """Parse a Ref-YouTube-VOS ``meta_expressions.json``.

    ``{"videos": {vid: {"expressions": {exp_id: {"exp": str, "obj_id":
    "1"}}, "frames": ["00000", "00005", ...]}}}``; ``obj_id`` is a string
    of digits (an int is accepted) and may be absent (the valid split).

    Returns:
        tuple[dict, dict]: ``vid -> dict(frames (list[str] stems),
        expressions (list of dict(exp_id, sentence, obj_id: list[int] |
        None)))`` in file order, and counts ``videos``, ``expressions``,
        ``empty_expressions_dropped``, ``spaces_fixed``.

    Raises:
        DataFileError: not JSON, or a schema error naming the key path
            (e.g. ``videos -> 'abc' -> expressions -> '0': no 'exp'``) or a
            non-integer ``obj_id``.
    """
    return _parse_meta_expressions(path, ('obj_id', ))


def parse_ytvos_meta(path: str) -> Dict[str, Dict[str, Dict]]:
    """Parse a Ref-YouTube-VOS ``<split>/meta.json``.

    ``{"videos": {vid: {"objects": {obj_id: {"category": str, "frames":
    [stems]}}}}}``.

    Returns:
        dict: ``vid -> obj_id (str) -> dict(category (str | None), frames
        (set of stems where the object appears, or None if not given))``.
    """
    data = load_json(path, 'meta_file')
    out = {}
    for vid, video in _meta_videos(data, path).items():
        keys = [_VIDEOS, vid]
        _expect(video, dict, path, keys)
        objects = _expect(
            _get(video, 'objects', path, keys), dict, path,
            keys + [_Name('objects')])
        out[vid] = {}
        for obj_id, obj in objects.items():
            where = keys + [_Name('objects'), obj_id]
            _expect(obj, dict, path, where)
            frames = obj.get('frames')
            if frames is not None:
                frames = set(_expect(frames, list, path, where + [_FRAMES]))
            category = obj.get('category')
            out[vid][str(obj_id)] = dict(
                category=None if category is None else str(category),
                frames=frames)
    return out


def parse_mevis_meta_expressions(path: str) -> Tuple[Dict[str, Dict], Dict]:
    """Parse a MeViS ``meta_expressions.json``.

    ``{"videos": {vid: {"expressions": {exp_id: {"exp": str, "obj_id":
    [int, ...], "anno_id": [int, ...]}}, "frames": [...]}}}``.

    Returns:
        tuple[dict, dict]: ``vid -> dict(frames, expressions (list of
        dict(exp_id, sentence, obj_id, anno_id), the id lists None when
        absent))``, and counts as :func:`parse_ytvos_meta_expressions`.
    """
    return _parse_meta_expressions(path, ('obj_id', 'anno_id'))


def _parse_meta_expressions(path: str,
                            id_keys: Tuple[str, ...]) -> Tuple[Dict, Dict]:
    """What both meta_expressions formats share: ``videos -> vid ->
    {frames, expressions}``, the expressions' id fields ``id_keys``."""
    data = load_json(path)
    stats = Counter(
        videos=0, expressions=0, empty_expressions_dropped=0, spaces_fixed=0)
    videos = {}
    for vid, video in _meta_videos(data, path).items():
        keys = [_VIDEOS, vid]
        _expect(video, dict, path, keys)
        stats['videos'] += 1
        videos[vid] = dict(
            frames=_frame_list(video, path, keys),
            expressions=_expressions(video, path, keys, stats, id_keys))
    return videos, dict(stats)


def _read_lines(path: str, encoding: str) -> List[Tuple[int, str]]:
    """``(line number, text)`` of a text file, decoded line by line so that
    a decode error names its line."""
    if not osp.isfile(path):
        raise DataFileError(path, 'file does not exist')
    with open(path, 'rb') as f:
        data = f.read()
    lines = []
    for num, raw in enumerate(data.split(b'\n'), 1):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as e:
            raise InvalidInputError(
                f'{path}:{num}: not {encoding} text ({e.reason} at byte '
                f'{e.start} of the line)') from None
        if num == 1:
            text = text.lstrip('\ufeff')
        lines.append((num, text))
    return lines


def parse_davis_text_annotations(
        path: str,
        encoding: str,
        video_aliases: Optional[Dict[str, str]] = None) -> Tuple[List, Dict]:
    """Parse one Ref-DAVIS17 text file (``Davis17_<set>.txt``).

    Lines ``video obj_id "expression"``; blank lines and trailing spaces are
    ignored. Video names are mapped through ``video_aliases`` (the real
    files misspell three: :data:`DAVIS_VIDEO_ALIASES`). A second line for
    the same (video, object) is dropped with a warning: the numbering of
    :class:`RefDAVIS17Dataset` gives one expression per object and set.

    Args:
        path (str): The file.
        encoding (str): ``'utf-8'`` (annotator 1) or ``'latin-1'``
            (annotator 2), see :data:`DAVIS_ENCODINGS`.
        video_aliases (dict, optional): Name in the file -> folder name.

    Returns:
        tuple[list[dict], dict]: rows ``dict(video_id, obj_id (int),
        sentence, line)`` in file order, and counts ``lines``,
        ``aliased``, ``duplicates_dropped``, ``spaces_fixed``.

    Raises:
        InvalidInputError: a malformed line, an empty expression, an object
            id 0 or a line that does not decode, as ``file:line: ...``.
    """
    aliases = video_aliases or {}
    stats = Counter(lines=0, aliased=0, duplicates_dropped=0, spaces_fixed=0)
    rows, seen = [], {}
    for num, text in _read_lines(path, encoding):
        line = text.strip()
        if not line:
            continue
        match = _DAVIS_LINE.match(line)
        if not match:
            raise InvalidInputError(
                f'{path}:{num}: expected \'<video> <object id> '
                f'"<expression>"\', got {line!r}')
        stats['lines'] += 1
        vid, obj, raw = match.groups()
        obj_id = int(obj)
        if obj_id < 1:
            raise InvalidInputError(
                f'{path}:{num}: object id {obj_id}: DAVIS object ids start '
                'at 1 (0 is the background)')
        sentence = normalize_sentence(raw)
        if not sentence:
            raise InvalidInputError(f'{path}:{num}: empty expression')
        if sentence != raw:
            stats['spaces_fixed'] += 1
        if vid in aliases:
            vid = aliases[vid]
            stats['aliased'] += 1
        if (vid, obj_id) in seen:
            stats['duplicates_dropped'] += 1
            warnings.warn(
                f'{path}:{num}: video {vid!r} object {obj_id} already has '
                f'an expression at line {seen[vid, obj_id]} (this one is '
                'dropped)')
            continue
        seen[vid, obj_id] = num
        rows.append(
            dict(video_id=vid, obj_id=obj_id, sentence=sentence, line=num))
    return rows, dict(stats)


def read_imageset(path: str) -> List[str]:
    """Video names of a DAVIS ``ImageSets/2017/<split>.txt``, one a line
    (blank lines ignored, order kept)."""
    names = []
    for _, text in _read_lines(path, 'utf-8'):
        if text.strip() and text.strip() not in names:
            names.append(text.strip())
    return names


# ---------------------------------------------------------------- datasets
class BaseRVOSDataset(BaseReferSegDataset):
    """Common part of :class:`RefYouTubeVOSDataset`,
    :class:`RefDAVIS17Dataset` and :class:`MeViSDataset`.

    A subclass's :meth:`load_data_list` builds, for every kept video, its
    frames (``frame_dir``, ``frame_names``) and its expressions, and hands
    them to :meth:`_finish`, which makes the samples of ``sample_mode``
    (see the module docstring). Per-video and per-expression fields are
    kept in :attr:`_videos` / :attr:`_exps` and attached by
    :meth:`get_data_info`.

    Args:
        sample_mode (str, optional): ``'frame'`` (one sample per video,
            expression and listed frame: training) or ``'video'`` (one
            sample per video with all its expressions: testing). Defaults
            to ``'video'`` if ``test_mode`` else ``'frame'``.
        on_missing (str): ``'error'`` or ``'skip'``: a video whose frame
            folder, a listed frame file or (with masks) its mask folder /
            a frame's PNG is missing, see :class:`BaseReferSegDataset`.
            Skipping drops the whole video.
        **kwargs: :class:`BaseReferSegDataset` arguments.
    """

    def __init__(self,
                 *args,
                 sample_mode: Optional[str] = None,
                 on_missing: str = 'error',
                 **kwargs) -> None:
        name = type(self).__name__
        if sample_mode is None:
            sample_mode = 'video' if kwargs.get('test_mode') else 'frame'
        if sample_mode not in SAMPLE_MODES:
            raise InvalidInputError(
                f"{name}: sample_mode must be 'frame', 'video' or None "
                "(= 'video' in test_mode, else 'frame'), got "
                f'{sample_mode!r}')
        self.sample_mode = sample_mode
        self.has_gt = False
        self.stats: Dict[str, int] = {}
        self._videos: Dict[str, Dict] = {}
        self._exps: Dict[Tuple[str, str], Dict] = {}
        super().__init__(*args, on_missing=on_missing, **kwargs)

    # -------------------------------------------------------------- indexing
    def _refuse_frames_without_gt(self, where: str) -> None:
        """Frame samples need masks: a one-line error when there are none."""
        if self.sample_mode == 'frame' and not self.has_gt:
            raise InvalidInputError(
                f'{type(self).__name__}: split {self.split!r} has no masks '
                f'({where}), so it cannot be trained on '
                "(sample_mode='frame'); use sample_mode='video' to segment "
                'it, or a split with masks to train')

    @staticmethod
    def _listed_frames(frame_dir: str, names: Sequence[str]) -> None:
        """Check that the frame folder holds every listed frame file."""
        if not osp.isdir(frame_dir):
            raise DataFileError(frame_dir, 'frame folder does not exist')
        present = set(os.listdir(frame_dir))
        missing = [n for n in names if n not in present]
        if missing:
            raise DataFileError(
                osp.join(frame_dir, missing[0]),
                f'frame file does not exist ({len(missing)} of the '
                f'{len(names)} listed frames are missing)')

    @staticmethod
    def _expression(exp_id: str,
                    sentence: str,
                    obj_ids: Sequence[int],
                    mask_ids: Sequence[Any],
                    category: Optional[str] = None,
                    anno_set: Optional[str] = None) -> Dict:
        return dict(
            exp_id=str(exp_id),
            sentence=sentence,
            obj_ids=tuple(int(o) for o in obj_ids),
            mask_ids=tuple(str(m) for m in mask_ids),
            category=category,
            anno_set=anno_set)

    def _finish(self, videos: List[Tuple[str, Dict, List[Dict]]],
                stats: Dict[str, int]) -> List[dict]:
        """Store the kept videos and build the samples of
        ``sample_mode``.

        Args:
            videos: ``(video_id, video, expressions)``: ``video`` a dict
                with ``frame_dir``, ``frame_names`` (and the subclass's
                mask fields), ``expressions`` as :meth:`_expression` makes.
            stats: the subclass's counts, logged with ``videos``,
                ``expressions``, ``frames`` and ``samples``.
        """
        self._videos, self._exps = {}, {}
        data_list = []
        num_exps = num_frames = 0
        for vid, video, exps in videos:
            video = dict(video, exp_ids=[e['exp_id'] for e in exps])
            self._videos[vid] = video
            num_exps += len(exps)
            num_frames += len(video['frame_names'])
            for exp in exps:
                if (vid, exp['exp_id']) in self._exps:
                    raise InvalidInputError(
                        f'{type(self).__name__}: video {vid!r} has two '
                        f"expressions with exp_id {exp['exp_id']!r}")
                self._exps[vid, exp['exp_id']] = exp
                if self.sample_mode == 'frame':
                    data_list.extend(
                        dict(video_id=vid, exp_id=exp['exp_id'], frame_id=t)
                        for t in range(1,
                                       len(video['frame_names']) + 1))
            if self.sample_mode == 'video':
                data_list.append(dict(video_id=vid))
        counts = dict(
            videos=len(self._videos),
            expressions=num_exps,
            frames=num_frames,
            samples=len(data_list))
        counts.update(stats)
        self.stats = counts
        self._log_summary(
            len(data_list), {
                k: v
                for k, v in counts.items() if k != 'samples'
            })
        return data_list

    # -------------------------------------------------------------- samples
    def _frame_mask_source(self, vid: str, exp: Dict, index: int) -> Dict:
        """Mask keys of frame ``index`` (0-based) for ``exp``."""
        raise NotImplementedError

    def _video_mask_source(self, vid: str, exps: List[Dict]) -> Dict:
        """Mask keys of a whole video (with ``has_gt``)."""
        raise NotImplementedError

    def get_data_info(self, idx: int) -> dict:
        """The sample's fields (see the module docstring), the per-video
        and per-expression ones attached from the dataset's tables."""
        info = super().get_data_info(idx)
        vid = info['video_id']
        video = self._videos[vid]
        names = list(video['frame_names'])
        info.update(
            frame_dir=video['frame_dir'],
            frame_names=names,
            total_frames=len(names),
            modality='RGB')
        if self.sample_mode == 'frame':
            exp = self._exps[vid, info['exp_id']]
            info.update(
                sentence=exp['sentence'],
                instance_id='+'.join(str(o) for o in exp['obj_ids']),
                obj_ids=list(exp['obj_ids']),
                mask_ids=list(exp['mask_ids']),
                category=exp['category'],
                anno_set=exp['anno_set'],
                actor_action=-1)
            info.update(
                self._frame_mask_source(vid, exp,
                                        int(info['frame_id']) - 1))
        else:
            exps = [self._exps[vid, e] for e in video['exp_ids']]
            info['expressions'] = [
                dict(
                    exp_id=e['exp_id'],
                    sentence=e['sentence'],
                    obj_ids=list(e['obj_ids']),
                    mask_ids=list(e['mask_ids']),
                    category=e['category'],
                    anno_set=e['anno_set']) for e in exps
            ]
            info['has_gt'] = self.has_gt
            if self.has_gt:
                info.update(self._video_mask_source(vid, exps))
        return info

    @staticmethod
    def _find_bad_file(err: Exception,
                       data_info: dict) -> Optional[DataFileError]:
        """The :class:`DataFileError` behind a pipeline error: the error
        itself, or the first listed frame of the sample that does not
        decode."""
        if isinstance(err, DataFileError):
            return err
        names = data_info.get('frame_names')
        frame_dir = data_info.get('frame_dir')
        if names and frame_dir:
            inds = data_info.get('frame_inds')
            inds = (
                range(len(names))
                if inds is None else sorted({int(i)
                                             for i in inds}))
            try:
                for ind in inds:
                    if 0 <= ind < len(names):
                        check_frame_file(osp.join(frame_dir, names[ind]))
            except DataFileError as found:
                return found
        if isinstance(err, OSError) and err.filename:
            return DataFileError(
                err.filename, f'{type(err).__name__}: '
                f'{err.strerror or err}')
        return None

    @staticmethod
    def _sample_name(idx: int, data_info: dict) -> str:
        parts = [f"video {data_info.get('video_id')!r}"]
        if 'exp_id' in data_info:
            parts.append(f"expression {data_info['exp_id']!r}")
        if 'frame_id' in data_info:
            parts.append(f"frame {data_info['frame_id']}")
        return f"sample {idx} ({', '.join(parts)})"


class _PaletteMasks:
    """Masks as one palette PNG per frame (``<mask_dir>/<stem>.png``).

    The video dicts carry ``mask_dir`` and ``mask_names`` (the set of the
    listed frames' PNG names that exist), set by :meth:`_mask_folder`.
    """

    missing_mask = 'error'

    def _check_missing_mask(self, missing_mask: str) -> str:
        if missing_mask not in MISSING_MASK:
            raise InvalidInputError(
                f'{type(self).__name__}: missing_mask must be one of '
                f'{MISSING_MASK}, got {missing_mask!r}')
        return missing_mask

    def _mask_folder(self, mask_dir: str, names: Sequence[str],
                     stats: Counter) -> frozenset:
        """The PNG names of the listed frames that exist in ``mask_dir``;
        a missing folder, or a missing PNG with ``missing_mask='error'``,
        is a :class:`DataFileError`."""
        if not osp.isdir(mask_dir):
            raise DataFileError(mask_dir, 'mask folder does not exist')
        present = set(os.listdir(mask_dir))
        wanted = [osp.splitext(n)[0] + '.png' for n in names]
        missing = [n for n in wanted if n not in present]
        if missing and self.missing_mask == 'error':
            raise DataFileError(
                osp.join(mask_dir, missing[0]),
                f'mask file does not exist ({len(missing)} of the '
                f'{len(names)} listed frames have no PNG; '
                "missing_mask='empty' reads such a frame as one where "
                'every object is absent)')
        stats['frames_without_mask'] += len(missing)
        return frozenset(n for n in wanted if n in present)

    def _frame_mask_source(self, vid: str, exp: Dict, index: int) -> Dict:
        video = self._videos[vid]
        stem = osp.splitext(video['frame_names'][index])[0]
        return dict(
            mask_path=osp.join(video['mask_dir'], stem + '.png'),
            missing_mask=self.missing_mask)

    def _video_mask_source(self, vid: str, exps: List[Dict]) -> Dict:
        video = self._videos[vid]
        paths = []
        for name in video['frame_names']:
            png = osp.splitext(name)[0] + '.png'
            paths.append(
                osp.join(video['mask_dir'], png) if png in
                video['mask_names'] else None)
        return dict(mask_paths=paths)


@DATASETS.register_module()
class RefYouTubeVOSDataset(_PaletteMasks, BaseRVOSDataset):
    """Ref-YouTube-VOS (Seo et al., ECCV 2020) as distributed.

    Layout under ``data_root``::

        meta_expressions/{train,valid,test}/meta_expressions.json
        <split>/JPEGImages/<vid>/<frame>.jpg   listed frames (every 5th)
        <split>/Annotations/<vid>/<frame>.png  palette PNGs (train only)
        <split>/meta.json                      object categories (optional)

    Masks are read when ``data_prefix['ann']`` exists (``has_gt``): the
    real train split, and copies that carry masks for another split (the
    embedded synthetic copy does, so that J&F can be computed). Without it
    (the real valid split) only ``sample_mode='video'`` works, and
    expressions may lack ``obj_id`` (their ``obj_ids`` are ``[]``).

    The valid meta file lists 507 videos; the evaluation server scores the
    202 that are not in the test meta file, so those are removed, as the
    public code does (``exclude_file``). ``category`` comes from
    ``meta.json`` (``videos -> vid -> objects -> obj_id -> category``), and
    its per-object ``frames`` say which frame samples have an empty mask
    (counted as ``empty_mask_samples``; no PNG is read when indexing).

    Args:
        data_root (str): The dataset folder.
        split (str): ``'train'``, ``'valid'`` or ``'test'``.
        ann_file (str, optional): Defaults to
            ``'meta_expressions/<split>/meta_expressions.json'``.
        meta_file (str, optional): Categories. Defaults to
            ``'<split>/meta.json'``, used when it exists; a file given
            here must exist.
        exclude_file (str, optional): A meta_expressions.json whose videos
            are removed. ``'auto'`` (default): for ``'valid'``,
            ``'meta_expressions/test/meta_expressions.json'`` (required),
            for the other splits none. None keeps every video.
        data_prefix (dict, optional): ``img`` (frames) and ``ann`` (masks)
            folders. Defaults to ``<split>/JPEGImages`` and
            ``<split>/Annotations``.
        frame_ext (str): Frame file extension. Defaults to ``'.jpg'``.
        missing_mask (str): A listed frame without PNG in a split with
            masks: ``'error'`` (default; through ``on_missing``) or
            ``'empty'`` (the object is absent from it).
        on_missing (str): See :class:`BaseRVOSDataset`.
        sample_mode (str, optional): See :class:`BaseRVOSDataset`.
        **kwargs: :class:`BaseReferSegDataset` arguments.
    """

    METAINFO = dict(dataset_name='Ref-YouTube-VOS')
    SPLITS = ('train', 'valid', 'test')
    PREFIX_KEYS = ('img', 'ann')
    #: Videos of the valid split that the server scores.
    NUM_SCORED_VALID_VIDEOS = 202

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 ann_file: Optional[str] = None,
                 meta_file: Optional[str] = None,
                 exclude_file: Optional[str] = 'auto',
                 data_prefix: Optional[dict] = None,
                 frame_ext: str = '.jpg',
                 missing_mask: str = 'error',
                 on_missing: str = 'error',
                 sample_mode: Optional[str] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if split not in self.SPLITS:
            raise InvalidInputError(f'{name}: split must be one of '
                                    f'{self.SPLITS}, got {split!r}')
        self.split = split
        self.missing_mask = self._check_missing_mask(missing_mask)
        self.frame_ext = frame_ext
        self.meta_file_required = meta_file is not None
        self.meta_file = meta_file or f'{split}/meta.json'
        if exclude_file == 'auto':
            exclude_file = ('meta_expressions/test/meta_expressions.json'
                            if split == 'valid' else None)
            self.exclude_auto = split == 'valid'
        else:
            self.exclude_auto = False
        self.exclude_file = exclude_file
        if ann_file is None:
            ann_file = f'meta_expressions/{split}/meta_expressions.json'
        if data_prefix is None:
            data_prefix = dict(
                img=f'{split}/JPEGImages', ann=f'{split}/Annotations')
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            data_prefix=data_prefix,
            on_missing=on_missing,
            sample_mode=sample_mode,
            **kwargs)

    def _excluded_videos(self) -> set:
        if not self.exclude_file:
            return set()
        path = self._join_root(self.exclude_file)
        if not osp.isfile(path) and self.exclude_auto:
            raise InvalidInputError(
                f'{type(self).__name__}: the valid split needs {path} (the '
                'test meta file) to remove its videos and leave the '
                f'{self.NUM_SCORED_VALID_VIDEOS} videos the evaluation '
                'server scores; put it there, or pass exclude_file=None to '
                'keep every video of the valid meta file')
        return set(_meta_videos(load_json(path, 'exclude_file'), path))

    def load_data_list(self) -> List[dict]:
        """Index the split: the meta file, the frame folders and (with
        masks) the mask folders; no image is read."""
        self.skipped = []
        name = type(self).__name__
        ann_root = self.data_prefix['ann']
        self.has_gt = osp.isdir(ann_root)
        self._refuse_frames_without_gt(f'no folder {ann_root}')
        videos, parse_stats = parse_ytvos_meta_expressions(
            self._require_file(self.ann_file, 'ann_file'))
        excluded = self._excluded_videos()
        meta_path = self._join_root(self.meta_file)
        meta = {}
        if self.meta_file_required or osp.isfile(meta_path):
            meta = parse_ytvos_meta(meta_path)
        stats = Counter(
            meta_videos=parse_stats['videos'],
            excluded_videos=0,
            videos_without_expressions=0,
            empty_expressions_dropped=parse_stats['empty_expressions_dropped'],
            spaces_fixed=parse_stats['spaces_fixed'])
        if self.has_gt:
            stats.update(frames_without_mask=0)
        if self.sample_mode == 'frame' and meta:
            stats.update(empty_mask_samples=0)
        progress = self._index_progress(len(videos), 'videos')
        kept = []
        for num, (vid, entry) in enumerate(videos.items(), 1):
            progress(num)
            if vid in excluded:
                stats['excluded_videos'] += 1
                continue
            if not entry['expressions']:
                stats['videos_without_expressions'] += 1
                continue
            names = [s + self.frame_ext for s in entry['frames']]
            frame_dir = osp.join(self.data_prefix['img'], vid)
            video = dict(frame_dir=frame_dir, frame_names=names)
            what = f"video {vid!r} ({len(entry['expressions'])} expressions)"
            try:
                self._listed_frames(frame_dir, names)
                if self.has_gt:
                    video['mask_dir'] = osp.join(ann_root, vid)
                    video['mask_names'] = self._mask_folder(
                        video['mask_dir'], names, stats)
            except DataFileError as e:
                self._skip_or_raise(e, what)
                continue
            exps = []
            objects = meta.get(vid, {})
            for exp in entry['expressions']:
                obj_ids = exp['obj_id']
                if obj_ids is None:
                    if self.has_gt:
                        raise DataFileError(
                            self.ann_file, f"videos -> {vid!r} -> "
                            f"expressions -> {exp['exp_id']!r}: no 'obj_id' "
                            f'(the split has masks in {ann_root}, so every '
                            'expression must name its object)')
                    obj_ids = []
                cats = [
                    objects.get(str(o), {}).get('category') for o in obj_ids
                ]
                category = (
                    cats[0] if len(cats) == 1 else
                    '+'.join(cats) if cats and None not in cats else None)
                exps.append(
                    self._expression(exp['exp_id'], exp['sentence'], obj_ids,
                                     obj_ids, category))
                if 'empty_mask_samples' in stats:
                    appears = [
                        objects.get(str(o), {}).get('frames') for o in obj_ids
                    ]
                    if appears and None not in appears:
                        seen = set().union(*appears)
                        stats['empty_mask_samples'] += sum(
                            s not in seen for s in entry['frames'])
            kept.append((vid, video, exps))
        if (self.exclude_auto and self.split == 'valid'
                and len(kept) != self.NUM_SCORED_VALID_VIDEOS):
            print_log(
                f'{name}: {len(kept)} valid videos remain after removing '
                f'those of {self.exclude_file}; the evaluation server '
                f'scores {self.NUM_SCORED_VALID_VIDEOS} (a partial or '
                'synthetic copy?)',
                logger='current',
                level=logging.WARNING)
        return self._finish(kept, dict(stats))


@DATASETS.register_module()
class RefDAVIS17Dataset(_PaletteMasks, BaseRVOSDataset):
    """Ref-DAVIS17 (Khoreva et al., ACCV 2018) on DAVIS 2017.

    Layout under ``data_root`` (the DAVIS folder)::

        JPEGImages/480p/<vid>/<frame:05d>.jpg
        Annotations/480p/<vid>/<frame:05d>.png   palette, object ids
        ImageSets/2017/{train,val}.txt
        davis_text_annotations/Davis17_<set>.txt lines: video obj_id "text"

    The text files are read as they are (no conversion step): annot1* as
    UTF-8, annot2* as latin-1 (:data:`DAVIS_ENCODINGS`). Two annotators
    each wrote a first-frame and a full-video description: four sets,
    kept apart (``anno_set`` on every expression and sample), since the
    benchmark scores each set separately and averages the four results.

    Expression ids follow ReferFormer's numbering: ``exp_id = str(4 *
    (obj_id - 1) + set_index)``, ``set_index`` the set's position in
    :data:`DAVIS_ANNO_SETS` (annot1 0, annot1_full_video 1, annot2 2,
    annot2_full_video 3) whatever ``anno_sets`` holds. (ReferFormer
    numbers the objects of a video by position; both agree when every
    object 1..n has a line in every set, as in the real files.)

    Only the videos of the split's ImageSets file are used; their frames
    are the sorted ``.jpg`` files of ``JPEGImages/480p/<vid>``, each frame's
    mask ``<annotations>/<vid>/<same stem>.png``.

    Args:
        data_root (str): The DAVIS folder.
        split (str): ``'val'`` (30 videos) or ``'train'`` (60).
        text_root (str): Folder of the text files, relative to
            ``data_root``. Defaults to ``'davis_text_annotations'``.
        anno_sets (Sequence[str]): Sets to use. Defaults to all four.
        annotations (str): Mask folder relative to ``data_root``:
            ``'Annotations/480p'`` (default, semi-supervised object ids) or
            ``'Annotations_unsupervised/480p'``.
        data_prefix (dict): ``img``: frame folder. Defaults to
            ``dict(img='JPEGImages/480p')``.
        imageset_file (str): ``'ImageSets/2017/{split}.txt'``.
        video_aliases (dict, optional): Video names of the text files ->
            folder names. Defaults to :data:`DAVIS_VIDEO_ALIASES`.
        frame_ext (str): Frame file extension. Defaults to ``'.jpg'``.
        missing_mask (str): See :class:`RefYouTubeVOSDataset`.
        on_missing (str): See :class:`BaseRVOSDataset`.
        sample_mode (str, optional): See :class:`BaseRVOSDataset`.
    """

    METAINFO = dict(dataset_name='Ref-DAVIS17', anno_sets=DAVIS_ANNO_SETS)
    SPLITS = ('train', 'val')
    PREFIX_KEYS = ('img', )
    ANNO_SETS = DAVIS_ANNO_SETS

    def __init__(self,
                 data_root: str = '',
                 split: str = 'val',
                 text_root: str = 'davis_text_annotations',
                 anno_sets: Sequence[str] = DAVIS_ANNO_SETS,
                 annotations: str = 'Annotations/480p',
                 data_prefix: dict = dict(img='JPEGImages/480p'),
                 imageset_file: str = 'ImageSets/2017/{split}.txt',
                 video_aliases: Optional[Dict[str, str]] = None,
                 frame_ext: str = '.jpg',
                 missing_mask: str = 'error',
                 on_missing: str = 'error',
                 sample_mode: Optional[str] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if split not in self.SPLITS:
            raise InvalidInputError(f'{name}: split must be one of '
                                    f'{self.SPLITS}, got {split!r}')
        if isinstance(anno_sets, str):
            anno_sets = (anno_sets, )
        anno_sets = tuple(anno_sets)
        bad = [s for s in anno_sets if s not in self.ANNO_SETS]
        if not anno_sets or bad or len(set(anno_sets)) != len(anno_sets):
            raise InvalidInputError(
                f'{name}: anno_sets must be distinct names of '
                f'{self.ANNO_SETS}, got {anno_sets!r}')
        self.split = split
        self.text_root = text_root
        self.anno_sets = anno_sets
        self.annotations = annotations
        self.imageset_file = imageset_file.format(split=split)
        self.video_aliases = (
            dict(DAVIS_VIDEO_ALIASES)
            if video_aliases is None else dict(video_aliases))
        self.frame_ext = frame_ext
        self.missing_mask = self._check_missing_mask(missing_mask)
        super().__init__(
            data_root=data_root,
            data_prefix=data_prefix,
            on_missing=on_missing,
            sample_mode=sample_mode,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Index the split: the ImageSets file, the chosen text files and
        the frame / mask folders of the split's videos."""
        self.skipped = []
        mask_root = self._join_root(self.annotations)
        self.has_gt = osp.isdir(mask_root)
        self._refuse_frames_without_gt(f'no folder {mask_root}')
        split_videos = read_imageset(
            self._require_file(
                self._join_root(self.imageset_file), 'imageset_file'))
        in_split = set(split_videos)
        stats = Counter(
            other_split_lines=0,
            unknown_video_lines=0,
            videos_without_expressions=0)
        if self.has_gt:
            stats.update(frames_without_mask=0)
        per_video: Dict[str, List[Dict]] = {}
        unknown = set()
        text_dir = self._join_root(self.text_root)
        for anno_set in self.anno_sets:
            set_index = self.ANNO_SETS.index(anno_set)
            path = osp.join(text_dir, f'Davis17_{anno_set}.txt')
            if not osp.isfile(path):
                raise DataFileError(
                    path, f'text annotation file of set {anno_set!r} does '
                    'not exist (text_root, joined with data_root; '
                    'anno_sets chooses the sets)')
            rows, file_stats = parse_davis_text_annotations(
                path, DAVIS_ENCODINGS[anno_set], self.video_aliases)
            for key in ('lines', 'aliased', 'duplicates_dropped',
                        'spaces_fixed'):
                stats[key] += file_stats[key]
            for row in rows:
                vid = row['video_id']
                if vid not in in_split:
                    if osp.isdir(osp.join(self.data_prefix['img'], vid)):
                        stats['other_split_lines'] += 1
                    else:
                        stats['unknown_video_lines'] += 1
                        unknown.add(vid)
                    continue
                obj = row['obj_id']
                per_video.setdefault(vid, []).append(
                    (obj, set_index,
                     self._expression(
                         str(4 * (obj - 1) + set_index), row['sentence'],
                         [obj], [obj], None, anno_set)))
        if unknown:
            warnings.warn(
                f'{type(self).__name__}: {len(unknown)} video name(s) of '
                f'the text files are in no split and have no frame folder '
                f'in {self.data_prefix["img"]}: {sorted(unknown)[:10]} '
                '(misspelt? see video_aliases)')
        progress = self._index_progress(len(split_videos), 'videos')
        kept = []
        for num, vid in enumerate(split_videos, 1):
            progress(num)
            if vid not in per_video:
                stats['videos_without_expressions'] += 1
                continue
            exps = [
                e for _, _, e in sorted(
                    per_video[vid], key=lambda x: (x[0], x[1]))
            ]
            frame_dir = osp.join(self.data_prefix['img'], vid)
            try:
                if not osp.isdir(frame_dir):
                    raise DataFileError(frame_dir,
                                        'frame folder does not exist')
                names = sorted(
                    n for n in os.listdir(frame_dir)
                    if n.endswith(self.frame_ext))
                if not names:
                    raise DataFileError(
                        frame_dir, f'no {self.frame_ext} frame in the folder')
                video = dict(frame_dir=frame_dir, frame_names=names)
                if self.has_gt:
                    video['mask_dir'] = osp.join(mask_root, vid)
                    video['mask_names'] = self._mask_folder(
                        video['mask_dir'], names, stats)
            except DataFileError as e:
                self._skip_or_raise(
                    e, f'video {vid!r} ({len(exps)} expressions)')
                continue
            kept.append((vid, video, exps))
        return self._finish(kept, dict(stats))


@DATASETS.register_module()
class MeViSDataset(BaseRVOSDataset):
    """MeViS (Ding et al., ICCV 2023) as distributed.

    Layout under ``data_root``::

        <split>/JPEGImages/<vid>/<frame>.jpg
        <split>/meta_expressions.json   obj_id and anno_id lists
        <split>/mask_dict.json          train, valid_u (not valid)

    An expression may refer to several objects (``anno_id`` list); its
    ground truth on a frame is the union of their masks, empty where all
    are absent. ``mask_dict[str(anno_id)]`` lists one COCO RLE (``counts``
    a JSON string) or null per listed frame. The mask file is loaded once
    (it is large) and kept as one pickled blob per annotation used, which
    :meth:`get_data_info` unpacks: ``mask_rles`` (one entry per anno_id of
    the expression, RLE or None) in frame mode, ``object_rles`` (``str
    (anno_id) -> list of T RLEs or None``) in video mode; both with
    ``mask_path`` = the mask file, for error messages. ``mask_ids`` are the
    anno_ids (str). Frame samples whose every referred object is absent
    are counted as ``empty_mask_samples``.

    Args:
        data_root (str): The dataset folder.
        split (str): ``'train'``, ``'valid_u'`` or ``'valid'``.
        ann_file (str, optional): Defaults to
            ``'<split>/meta_expressions.json'``.
        mask_file (str, optional): ``'auto'`` (default):
            ``'<split>/mask_dict.json'``, required for train / valid_u,
            used for valid if present (the real valid split has none: no
            ``has_gt``). None: no masks.
        data_prefix (dict, optional): ``img``. Defaults to
            ``dict(img='<split>/JPEGImages')``.
        frame_ext (str): Frame file extension. Defaults to ``'.jpg'``.
        on_missing (str): See :class:`BaseRVOSDataset`.
        sample_mode (str, optional): See :class:`BaseRVOSDataset`.
    """

    METAINFO = dict(dataset_name='MeViS')
    SPLITS = ('train', 'valid_u', 'valid')
    PREFIX_KEYS = ('img', )

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 ann_file: Optional[str] = None,
                 mask_file: Optional[str] = 'auto',
                 data_prefix: Optional[dict] = None,
                 frame_ext: str = '.jpg',
                 on_missing: str = 'error',
                 sample_mode: Optional[str] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if split not in self.SPLITS:
            raise InvalidInputError(f'{name}: split must be one of '
                                    f'{self.SPLITS}, got {split!r}')
        self.split = split
        self.mask_file = mask_file
        self.frame_ext = frame_ext
        self._mask_blobs: Dict[str, bytes] = {}
        self.mask_path: Optional[str] = None
        if ann_file is None:
            ann_file = f'{split}/meta_expressions.json'
        if data_prefix is None:
            data_prefix = dict(img=f'{split}/JPEGImages')
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            data_prefix=data_prefix,
            on_missing=on_missing,
            sample_mode=sample_mode,
            **kwargs)

    def _resolve_mask_file(self) -> Optional[str]:
        if self.mask_file is None:
            return None
        if self.mask_file == 'auto':
            path = self._join_root(f'{self.split}/mask_dict.json')
            if self.split == 'valid' and not osp.isfile(path):
                return None
            return self._require_file(path, "mask_file ('auto')")
        return self._require_file(self._join_root(self.mask_file), 'mask_file')

    def _load_mask_dict(self, path: str) -> Dict[str, Any]:
        masks = load_json(path, 'mask_file')
        if not isinstance(masks, dict):
            raise DataFileError(
                path, 'expected an object anno_id -> list of per-frame '
                f'RLEs, got {type(masks).__name__}')
        return masks

    def load_data_list(self) -> List[dict]:
        """Index the split: the meta file, the frame folders and (with
        masks) the mask file, checked against the meta file."""
        self.skipped = []
        self.mask_path = self._resolve_mask_file()
        self.has_gt = self.mask_path is not None
        self._refuse_frames_without_gt('no mask_dict.json')
        videos, parse_stats = parse_mevis_meta_expressions(
            self._require_file(self.ann_file, 'ann_file'))
        masks = self._load_mask_dict(self.mask_path) if self.has_gt else {}
        stats = Counter(
            meta_videos=parse_stats['videos'],
            videos_without_expressions=0,
            multi_object_expressions=0,
            empty_expressions_dropped=parse_stats['empty_expressions_dropped'],
            spaces_fixed=parse_stats['spaces_fixed'])
        if self.has_gt and self.sample_mode == 'frame':
            stats.update(empty_mask_samples=0)
        used: Dict[str, None] = {}
        progress = self._index_progress(len(videos), 'videos')
        kept = []
        for num, (vid, entry) in enumerate(videos.items(), 1):
            progress(num)
            if not entry['expressions']:
                stats['videos_without_expressions'] += 1
                continue
            names = [s + self.frame_ext for s in entry['frames']]
            frame_dir = osp.join(self.data_prefix['img'], vid)
            try:
                self._listed_frames(frame_dir, names)
            except DataFileError as e:
                self._skip_or_raise(
                    e, f"video {vid!r} ({len(entry['expressions'])} "
                    'expressions)')
                continue
            exps = []
            for exp in entry['expressions']:
                anno_ids = exp['anno_id']
                if anno_ids is None:
                    if self.has_gt:
                        raise DataFileError(
                            self.ann_file, f'videos -> {vid!r} -> '
                            f"expressions -> {exp['exp_id']!r}: no "
                            "'anno_id' (the split has masks, so every "
                            'expression must name its annotations)')
                    anno_ids = []
                if len(anno_ids) > 1:
                    stats['multi_object_expressions'] += 1
                if self.has_gt:
                    self._check_annos(masks, vid, exp['exp_id'], anno_ids,
                                      len(names))
                    used.update(dict.fromkeys(str(a) for a in anno_ids))
                    if 'empty_mask_samples' in stats:
                        per = [masks[str(a)] for a in anno_ids]
                        stats['empty_mask_samples'] += sum(
                            all(p[t] is None for p in per)
                            for t in range(len(names)))
                exps.append(
                    self._expression(exp['exp_id'], exp['sentence'],
                                     exp['obj_id'] or [], anno_ids))
            kept.append((vid, dict(frame_dir=frame_dir,
                                   frame_names=names), exps))
        # one pickled blob per used annotation: the parsed JSON (millions
        # of small objects) is freed as it goes, and DataLoader workers
        # that read a blob do not touch (copy) the others' pages
        self._mask_blobs = {
            a: pickle.dumps(masks.pop(a), protocol=pickle.HIGHEST_PROTOCOL)
            for a in used
        }
        del masks
        return self._finish(kept, dict(stats))

    def _check_annos(self, masks: Dict[str, Any], vid: str, exp_id: str,
                     anno_ids: Sequence[int], num_frames: int) -> None:
        for anno in anno_ids:
            key = str(anno)
            if key not in masks:
                raise DataFileError(
                    self.mask_path, f'no anno_id {key!r} (video {vid!r} '
                    f'expression {exp_id!r} of {self.ann_file} refers to '
                    'it)')
            per_frame = masks[key]
            if not isinstance(per_frame, list):
                raise DataFileError(
                    self.mask_path, f'{key!r}: expected a list of '
                    f'per-frame RLEs, got {type(per_frame).__name__}')
            if len(per_frame) != num_frames:
                raise DataFileError(
                    self.mask_path, f'anno_id {key!r} has '
                    f'{len(per_frame)} masks but video {vid!r} lists '
                    f'{num_frames} frames in {self.ann_file}')

    def _frame_mask_source(self, vid: str, exp: Dict, index: int) -> Dict:
        return dict(
            mask_rles=[
                pickle.loads(self._mask_blobs[m])[index]
                for m in exp['mask_ids']
            ],
            mask_path=self.mask_path)

    def _video_mask_source(self, vid: str, exps: List[Dict]) -> Dict:
        object_rles = {}
        for exp in exps:
            for m in exp['mask_ids']:
                if m not in object_rles:
                    object_rles[m] = pickle.loads(self._mask_blobs[m])
        return dict(object_rles=object_rles, mask_path=self.mask_path)
