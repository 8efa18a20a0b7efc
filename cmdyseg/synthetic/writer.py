# Copyright (c) cmdyseg contributors. All rights reserved.
"""Writing the synthetic dataset to disk, exactly as A2D Sentences
distributes its files, so that the real loader
(:class:`cmdyseg.datasets.A2DSentencesDataset`) reads it unchanged::

    Release/videoset.csv           no header: vid, label, start_time,
                                   end_time, height, width, total_frames,
                                   annotated_frames, subset (0 train, 1 test)
    Release/clips320H/<vid>.mp4    'mp4v' clips (``height`` px high, not 320)
    a2d_annotation_with_instances/<vid>/<frame:05d>.h5
                                   1-based frames; ``instance`` (N,) ids,
                                   ``reMask`` (N, W, H) uint8, (W, H) when
                                   N == 1, ``reBBox`` (4, N) x1 y1 x2 y2,
                                   ``id`` (N,) actor-action codes
    a2d_annotation.txt             header ``video_id,instance_id,query``
    a2d_missed_videos.txt          one id a line, no trailing newline;
                                   these videos have a clip and sentences
                                   but no masks (the loader must drop them)
    synthetic_meta.json            not in A2D: metainfo, scene and cue of
                                   every (video, instance), statistics

Output is a pure function of the arguments (same seed, same bytes, given
the same OpenCV/FFmpeg and HDF5 builds): HDF5 object timestamps are off,
text files use ``\\n``, per-video random streams are derived from
``(seed, split, index)`` (:func:`.scenes.sample_scenes`). The dataset is
written into a temporary directory next to the target and swapped in at the
end (:func:`cmdyseg.fileio.atomic_dir`): an interrupted run leaves the
previous data, or nothing.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import h5py
import numpy as np

from cmdyseg.fileio.atomic import atomic_dir, check_out_dir
from cmdyseg.utils.errors import InputNotFoundError, InvalidInputError
from .scenes import (ACTIONS, ACTORS, COLOURS, CUES, SENTENCES_PER_ACTOR,
                     Scene, sample_scenes)

META_FILE = 'synthetic_meta.json'
META_FORMAT = 'cmdyseg-synthetic-a2d'
META_VERSION = 1
FPS = 12


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, 'wb') as f:
        f.write(data)


def _write_video(path: str, frames: np.ndarray) -> None:
    """Write (T, H, W, 3) BGR frames as 'mp4v' and check they decode."""
    T, H, W = frames.shape[:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), FPS,
                             (W, H))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot open an mp4v VideoWriter for '
                           f'{path} (is FFmpeg support built in?)')
    for frame in frames:
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    cap = cv2.VideoCapture(path)
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if frame.shape != (H, W, 3):
            raise RuntimeError(f'{path}: decoded frame of shape '
                               f'{frame.shape}, expected {(H, W, 3)}')
        n += 1
    cap.release()
    if n != T:
        raise RuntimeError(f'{path}: decodes to {n} frames, wrote {T}')


def _write_h5(path: str, scene: Scene, frame: int) -> List[int]:
    """Write the annotation of one 1-based frame; return its instances."""
    ids = scene.present(frame)
    lab = scene.labels[frame - 1]
    masks = np.stack([(lab == k + 1) for k in ids]).astype(np.uint8)
    boxes = np.zeros((4, len(ids)), np.float64)
    for j, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        boxes[:, j] = (xs.min(), ys.min(), xs.max(), ys.max())
    re_mask = masks.transpose(0, 2, 1)  # (N, W, H) as A2D stores it
    if len(ids) == 1:
        re_mask = re_mask[0]
    codes = np.array([scene.tracks[k].code for k in ids], np.int64)
    with h5py.File(path, 'w') as f:
        kw = dict(track_times=False)
        f.create_dataset('instance', data=np.array(ids, np.int64), **kw)
        # gzip (deterministic) keeps the binary masks ~20x smaller
        f.create_dataset(
            'reMask',
            data=np.ascontiguousarray(re_mask),
            compression='gzip',
            compression_opts=4,
            **kw)
        f.create_dataset('reBBox', data=boxes, **kw)
        f.create_dataset('id', data=codes, **kw)
    return ids


def _write_dataset(root: str, scenes: List[Scene], params: dict) -> dict:
    """Write every file of the dataset under ``root``; return the meta."""
    release = osp.join(root, 'Release')
    clips = osp.join(release, 'clips320H')
    ann_root = osp.join(root, 'a2d_annotation_with_instances')
    os.makedirs(clips)
    os.makedirs(ann_root)
    T, H, W = params['num_frames'], params['height'], params['width']
    rows, ann_rows, instances, videos = [], [], [], {}
    for scene in sorted(scenes, key=lambda s: s.video_id):
        vid = scene.video_id
        _write_video(osp.join(clips, vid + '.mp4'), scene.frames())
        rows.append(f'{vid},{scene.tracks[0].code},0,'
                    f'{math.ceil(T / FPS)},{H},{W},{T},'
                    f'{len(scene.annotated)},{scene.subset}')
        present = {}
        if scene.missed:
            # sentences but no masks: a loader that does not drop the
            # listed videos fails on the missing mask folder
            for k in range(len(scene.tracks)):
                for sent in scene.sentences[k]:
                    ann_rows.append(f'{vid},{k},{sent}')
        else:
            os.makedirs(osp.join(ann_root, vid))
            for frame in scene.annotated:
                present[frame] = _write_h5(
                    osp.join(ann_root, vid, f'{frame:05d}.h5'), scene,
                    frame)
            for k, (tr, cue) in enumerate(zip(scene.tracks, scene.cues)):
                frames_in = [f for f in scene.annotated if k in present[f]]
                for sent in scene.sentences[k]:
                    ann_rows.append(f'{vid},{k},{sent}')
                instances.append(
                    dict(
                        video_id=vid,
                        instance_id=k,
                        subset=scene.subset,
                        scene=scene.kind,
                        cue=cue,
                        colour=tr.colour,
                        actor=tr.actor,
                        action=tr.action,
                        code=tr.code,
                        sentences=scene.sentences[k],
                        frames=frames_in))
        videos[vid] = dict(
            subset=scene.subset,
            missed=scene.missed,
            scene=scene.kind,
            annotated_frames=scene.annotated,
            num_instances=len(scene.tracks),
            num_sentences=sum(len(x) for x in scene.sentences))
    _write_bytes(
        osp.join(release, 'videoset.csv'),
        ''.join(r + '\n' for r in rows).encode('utf-8'))
    _write_bytes(
        osp.join(root, 'a2d_annotation.txt'),
        ''.join(r + '\n' for r in ['video_id,instance_id,query'] +
                ann_rows).encode('utf-8'))
    missed = sorted(s.video_id for s in scenes if s.missed)
    _write_bytes(
        osp.join(root, 'a2d_missed_videos.txt'),
        '\n'.join(missed).encode('utf-8'))
    meta = dict(
        format=META_FORMAT,
        version=META_VERSION,
        params=params,
        metainfo=dict(actors=list(ACTORS), actions=list(ACTIONS)),
        colours={k: list(v) for k, v in COLOURS.items()},
        videos=videos,
        instances=instances,
        stats=_stats(instances, videos, params))
    _write_bytes(
        osp.join(root, META_FILE),
        (json.dumps(meta, indent=1, sort_keys=True) + '\n').encode('utf-8'))
    return meta


def _stats(instances: List[dict], videos: dict, params: dict) -> dict:
    """Counts per split: videos, instances, sentences, samples, cues."""
    stats = {}
    for subset, name in ((0, 'train'), (1, 'test')):
        inst = [i for i in instances if i['subset'] == subset]
        vids = [v for v in videos.values() if v['subset'] == subset]
        samples = {c: 0 for c in CUES}
        per_cue = {c: 0 for c in CUES}
        for i in inst:
            per_cue[i['cue']] += 1
            samples[i['cue']] += len(i['sentences']) * len(i['frames'])
        stats[name] = dict(
            videos=sum(not v['missed'] for v in vids),
            missed_videos=sum(v['missed'] for v in vids),
            missed_sentences=sum(
                v['num_sentences'] for v in vids if v['missed']),
            annotated_frames=sum(
                len(v['annotated_frames']) for v in vids if not v['missed']),
            instances=len(inst),
            sentences=sum(len(i['sentences']) for i in inst),
            samples=sum(samples.values()),
            instances_per_cue=per_cue,
            samples_per_cue=samples,
            scenes={
                k: sum(v['scene'] == k and not v['missed'] for v in vids)
                for k in CUES
            })
    return stats


def _check_args(num_train, num_test, num_missed, num_frames, height, width):
    for name, value, low in (('num_train', num_train, 0),
                             ('num_test', num_test, 0),
                             ('num_missed', num_missed, 0),
                             ('num_frames', num_frames, 8),
                             ('height', height, 32), ('width', width, 32)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f'{name} must be an integer >= {low}, got '
                             f'{value!r}')
    for name, value in (('height', height), ('width', width)):
        if value % 2:
            raise ValueError(f'{name} must be even (mp4v needs even frame '
                             f'sizes), got {value}')
    if num_train + num_test == 0:
        raise ValueError('num_train + num_test must be > 0')


def prepare_output(out_dir, overwrite, seed, num_train, num_test,
                   num_missed, num_frames, height, width):
    """What every layout's generator does first: check the arguments and
    the output folder; returns ``(absolute out_dir, params)`` with the
    scene parameters as ints (the same for both layouts, so that they pick
    the same scenes)."""
    _check_args(num_train, num_test, num_missed, num_frames, height, width)
    out_dir = check_out_dir(out_dir, overwrite,
                            'overwrite=True (--overwrite)')
    params = dict(
        seed=int(seed),
        num_train=int(num_train),
        num_test=int(num_test),
        num_missed=int(num_missed),
        num_frames=int(num_frames),
        height=int(height),
        width=int(width))
    return out_dir, params


def generate_synthetic_a2d(out_dir: str,
                           seed: int = 0,
                           num_train: int = 480,
                           num_test: int = 50,
                           num_frames: int = 32,
                           height: int = 96,
                           width: int = 128,
                           num_missed: int = 2,
                           overwrite: bool = False) -> dict:
    """Generate the synthetic dataset into ``out_dir`` (see module doc).

    Args:
        out_dir (str): data root to create (e.g. ``data/synthetic_a2d``).
        seed (int): random seed; the same arguments give the same bytes.
        num_train (int): labelled training videos (subset 0).
        num_test (int): labelled test videos (subset 1).
        num_frames (int): frames per video, >= 8.
        height (int): frame height in px, even, >= 32.
        width (int): frame width in px, even, >= 32.
        num_missed (int): extra videos listed in ``a2d_missed_videos.txt``
            (alternately subset 0 and 1): in ``videoset.csv`` with a clip
            and sentences but without a mask folder, so that a loader which
            does not drop them fails (the real file has no sentences for
            its 28 missed videos; here they have some on purpose).
        overwrite (bool): replace a non-empty ``out_dir``; without it a
            non-empty ``out_dir`` raises :class:`FileExistsError`.

    Returns:
        dict: the content of ``synthetic_meta.json`` (``stats`` holds the
        counts per split).
    """
    out_dir, params = prepare_output(out_dir, overwrite, seed, num_train,
                                     num_test, num_missed, num_frames,
                                     height, width)
    params.update(fps=FPS, sentences_per_actor=SENTENCES_PER_ACTOR)

    scenes = sample_scenes(seed, num_train, num_test, num_missed, num_frames,
                           height, width)
    # an existing out_dir is empty or may be overwritten (checked above)
    with atomic_dir(out_dir, overwrite=True) as tmp:
        meta = _write_dataset(tmp, scenes, params)
    return meta


def load_synthetic_meta(data_root: str) -> dict:
    """Read ``synthetic_meta.json`` of a generated dataset. A missing,
    unreadable or other-version file is a :class:`UserInputError` (the
    tools print it as one line)."""
    path = osp.join(data_root, META_FILE)
    regenerate = ('write the data again with '
                  'tools/dataset_converters/generate_synthetic_a2d.py')
    if not osp.isfile(path):
        raise InputNotFoundError(
            f'{path} not found: {data_root} is not a dataset written by '
            f'generate_synthetic_a2d (the per-cue scores need its meta '
            f'file); {regenerate}')
    try:
        with open(path, encoding='utf-8') as f:
            meta = json.load(f)
    except ValueError as e:
        raise InvalidInputError(f'{path}: not a JSON file ({e}); '
                                f'{regenerate}') from None
    fields = meta if isinstance(meta, dict) else {}
    if (fields.get('format'), fields.get('version')) != (META_FORMAT,
                                                         META_VERSION):
        raise InvalidInputError(
            f'{path}: format {fields.get("format")!r} version '
            f'{fields.get("version")!r}, expected {META_FORMAT!r} version '
            f'{META_VERSION}; {regenerate}')
    return meta


def _as_meta(meta_or_root) -> dict:
    """A meta dict, read from the data root when given one."""
    return (load_synthetic_meta(meta_or_root)
            if isinstance(meta_or_root, str) else meta_or_root)


def instance_cues(meta_or_root) -> Dict[Tuple[str, int], str]:
    """Map ``(video_id, instance_id)`` to its cue (``none`` / ``position``
    / ``motion``), from a meta dict or a data root."""
    meta = _as_meta(meta_or_root)
    return {(i['video_id'], int(i['instance_id'])): i['cue']
            for i in meta['instances']}


def motion_pairs(meta_or_root) -> Dict[Tuple[str, int], str]:
    """Map ``(video_id, instance_id)`` of every ``motion``-cue instance to
    the actions that tell it from its look-alikes (same colour and shape,
    same video), sorted: ``'moving_left / standing'``. Both sides of a
    pair get the same name, so each pair of actions is one group."""
    meta = _as_meta(meta_or_root)
    by_video = {}
    for inst in meta['instances']:
        by_video.setdefault(inst['video_id'], []).append(inst)
    pairs = {}
    for inst in meta['instances']:
        if inst['cue'] != 'motion':
            continue
        actions = {inst['action']} | {
            other['action']
            for other in by_video[inst['video_id']]
            if other is not inst and other['colour'] == inst['colour']
            and other['actor'] == inst['actor']
        }
        pairs[(inst['video_id'], int(inst['instance_id']))] = ' / '.join(
            sorted(actions))
    return pairs


def format_stats(meta: dict) -> str:
    """Human-readable summary of a generated dataset."""
    p = meta['params']
    lines = [
        f"synthetic A2D, seed {p['seed']}: {p['num_frames']} frames of "
        f"{p['height']}x{p['width']} px at {p['fps']} fps, "
        f"{p['sentences_per_actor']} sentences per actor",
        f"actors {tuple(meta['metainfo']['actors'])}",
        f"actions {tuple(meta['metainfo']['actions'])}",
    ]
    for split, s in meta['stats'].items():
        lines.append(
            f"{split}: {s['videos']} videos (+{s['missed_videos']} missed), "
            f"{s['annotated_frames']} annotated frames, "
            f"{s['instances']} instances, {s['sentences']} sentences, "
            f"{s['samples']} samples; scenes {s['scenes']}; "
            f"samples per cue {s['samples_per_cue']}")
    return '\n'.join(lines)
