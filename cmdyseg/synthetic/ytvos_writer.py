# Copyright (c) cmdyseg contributors. All rights reserved.
"""The synthetic scenes in the Ref-YouTube-VOS layout.

The same scenes as :func:`.writer.generate_synthetic_a2d` (same seed, same
videos, same sentences), written as Ref-YouTube-VOS distributes its data,
so that :class:`cmdyseg.datasets.RefYouTubeVOSDataset` and the video-level
test (every frame of every expression, J&F) run end to end on any
machine::

    train/JPEGImages/<vid>/<frame>.jpg    training scenes (subset 0)
    train/Annotations/<vid>/<frame>.png   palette PNG, value = object id
    train/meta.json                       objects -> id -> category, frames
    valid/JPEGImages/<vid>/<frame>.jpg    test scenes (subset 1)
    valid/Annotations/<vid>/<frame>.png   NOT in the real valid split (its
                                          masks are private); here every
                                          frame is masked so that J&F can
                                          be computed
    valid/meta.json
    meta_expressions/{train,valid}/meta_expressions.json
    meta_expressions/test/meta_expressions.json   no videos (the real one
                                          lists the videos removed from
                                          valid)
    synthetic_meta.json                   cue of every (video, exp_id)

Every frame of a scene is listed and masked; frame names step by 5
(``00000``, ``00005``, ...) as in Ref-YouTube-VOS, whose frames are every
5th of the source video. Object ids are ``k + 1`` for actor ``k``
(0 is the background), categories the actor names. The videos listed as
missed in the A2D layout (no masks) are left out. Output is written into
a temporary folder and swapped in (:func:`cmdyseg.fileio.atomic_dir`).
"""
import json
import os
import os.path as osp
from typing import Dict, Sequence

import cv2
import numpy as np
from PIL import Image

from cmdyseg.fileio.atomic import atomic_dir
from .scenes import sample_scenes
from .writer import prepare_output

YTVOS_META_FORMAT = 'cmdyseg-synthetic-ytvos'
YTVOS_META_VERSION = 1
FRAME_STEP = 5
SPLITS = {0: 'train', 1: 'valid'}


def _palette() -> list:
    """DAVIS-like palette: 0 black, then distinct colours."""
    colours = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0),
               (0, 0, 128), (128, 0, 128), (0, 128, 128), (128, 128, 128)]
    flat = [c for rgb in colours for c in rgb]
    return flat + [0] * (768 - len(flat))


def _dump_json(path: str, obj) -> None:
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write('\n')


def _write_split(root: str, split: str, scenes: Sequence, palette: list,
                 cues: Dict) -> None:
    img_root = osp.join(root, split, 'JPEGImages')
    ann_root = osp.join(root, split, 'Annotations')
    os.makedirs(img_root)
    os.makedirs(ann_root)
    meta_videos, exp_videos = {}, {}
    for scene in sorted(scenes, key=lambda s: s.video_id):
        vid = scene.video_id
        os.makedirs(osp.join(img_root, vid))
        os.makedirs(osp.join(ann_root, vid))
        names = [f'{FRAME_STEP * t:05d}' for t in range(len(scene.labels))]
        for name, frame, label in zip(names, scene.frames(), scene.labels):
            cv2.imwrite(
                osp.join(img_root, vid, name + '.jpg'), frame,
                [cv2.IMWRITE_JPEG_QUALITY, 95])
            png = Image.fromarray(np.ascontiguousarray(label), mode='P')
            png.putpalette(palette)
            png.save(osp.join(ann_root, vid, name + '.png'))
        objects, expressions = {}, {}
        for k, (track, cue) in enumerate(zip(scene.tracks, scene.cues)):
            obj_id = str(k + 1)
            present = [
                n for n, lab in zip(names, scene.labels)
                if np.any(lab == k + 1)
            ]
            objects[obj_id] = dict(
                category=track.actor, frames=present)
            for sentence in scene.sentences[k]:
                exp_id = str(len(expressions))
                expressions[exp_id] = dict(exp=sentence, obj_id=obj_id)
                cues[f'{vid}/{exp_id}'] = cue
        meta_videos[vid] = dict(objects=objects)
        exp_videos[vid] = dict(expressions=expressions, frames=names)
    _dump_json(osp.join(root, split, 'meta.json'), dict(videos=meta_videos))
    exp_dir = osp.join(root, 'meta_expressions', split)
    os.makedirs(exp_dir)
    _dump_json(
        osp.join(exp_dir, 'meta_expressions.json'), dict(videos=exp_videos))


def generate_synthetic_ytvos(out_dir: str,
                             seed: int = 0,
                             num_train: int = 480,
                             num_test: int = 50,
                             num_frames: int = 32,
                             height: int = 96,
                             width: int = 128,
                             num_missed: int = 2,
                             overwrite: bool = False) -> dict:
    """Write the synthetic scenes into ``out_dir`` in the Ref-YouTube-VOS
    layout (see the module documentation).

    The arguments are those of :func:`generate_synthetic_a2d` and pick the
    same scenes: with the same values both layouts hold the same videos
    (``num_train=0`` writes the test scenes only: their frames, masks and
    sentences do not change, since a scene depends on ``(seed, split,
    index)``, but their video ids, drawn in order from one stream of
    ``seed``, do).

    Returns:
        dict: the content of ``synthetic_meta.json`` (``params``, ``cues``
        ``"<vid>/<exp_id>" -> cue``, ``videos`` per split).
    """
    out_dir, params = prepare_output(out_dir, overwrite, seed, num_train,
                                     num_test, num_missed, num_frames,
                                     height, width)
    params['frame_step'] = FRAME_STEP
    scenes = [
        s for s in sample_scenes(seed, num_train, num_test, num_missed,
                                 num_frames, height, width) if not s.missed
    ]
    palette = _palette()
    cues: Dict[str, str] = {}
    with atomic_dir(out_dir, overwrite=True) as tmp:
        for subset, split in SPLITS.items():
            _write_split(tmp, split,
                         [s for s in scenes if s.subset == subset], palette,
                         cues)
        test_dir = osp.join(tmp, 'meta_expressions', 'test')
        os.makedirs(test_dir)
        _dump_json(
            osp.join(test_dir, 'meta_expressions.json'), dict(videos={}))
        meta = dict(
            format=YTVOS_META_FORMAT,
            version=YTVOS_META_VERSION,
            params=params,
            cues=cues,
            videos={
                split: sorted(s.video_id for s in scenes
                              if s.subset == subset)
                for subset, split in SPLITS.items()
            })
        _dump_json(osp.join(tmp, 'synthetic_meta.json'), meta)
    return meta
