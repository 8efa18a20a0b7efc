# Copyright (c) cmdyseg contributors. All rights reserved.
"""The synthetic scenes in the Ref-YouTube-VOS layout: the files, their
truth against the sampled scenes, determinism, and reading them with
RefYouTubeVOSDataset in frame and video mode."""
import hashlib
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from load_script import load_script
from mmengine.registry import init_default_scope
from PIL import Image

from cmdyseg.datasets import RefYouTubeVOSDataset
from cmdyseg.synthetic import (YTVOS_META_FORMAT, generate_synthetic_ytvos,
                               sample_scenes)

ROOT = osp.join(osp.dirname(__file__), '..', '..')
CLI = osp.join(ROOT, 'tools', 'dataset_converters',
               'generate_synthetic_a2d.py')
TINY = dict(num_train=3, num_test=2, num_missed=2, num_frames=8, height=32,
            width=48)
SPLITS = {0: 'train', 1: 'valid'}


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('cmdyseg')


def generate(path, seed=0, **kwargs):
    args = dict(TINY)
    args.update(kwargs)
    return generate_synthetic_ytvos(str(path), seed=seed, **args)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('ytvos') / 'data'
    meta = generate(root)
    return str(root), meta


@pytest.fixture(scope='module')
def scenes():
    return sample_scenes(0, TINY['num_train'], TINY['num_test'],
                         TINY['num_missed'], TINY['num_frames'],
                         TINY['height'], TINY['width'])


def read_json(*parts):
    with open(osp.join(*parts), encoding='utf-8') as f:
        return json.load(f)


def file_hashes(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = hashlib.sha256(
                    f.read()).hexdigest()
    return out


NAMES = ['00000', '00005', '00010', '00015', '00020', '00025', '00030',
         '00035']


def test_layout_frame_names_and_meta_files(tiny, scenes):
    root, meta = tiny
    assert meta['format'] == YTVOS_META_FORMAT
    assert meta == read_json(root, 'synthetic_meta.json')
    kept = [s for s in scenes if not s.missed]
    missed = {s.video_id for s in scenes if s.missed}
    assert len(kept) == 5 and len(missed) == 2
    for subset, split in SPLITS.items():
        vids = sorted(s.video_id for s in kept if s.subset == subset)
        assert meta['videos'][split] == vids
        exp_meta = read_json(root, 'meta_expressions', split,
                             'meta_expressions.json')['videos']
        assert sorted(exp_meta) == vids
        assert sorted(os.listdir(osp.join(root, split, 'JPEGImages'))) == vids
        assert sorted(os.listdir(osp.join(root, split,
                                          'Annotations'))) == vids
        for vid in vids:
            # every frame listed, names stepping by 5
            assert exp_meta[vid]['frames'] == NAMES
            assert sorted(os.listdir(
                osp.join(root, split, 'JPEGImages', vid))) == [
                    n + '.jpg' for n in NAMES]
            assert sorted(os.listdir(
                osp.join(root, split, 'Annotations', vid))) == [
                    n + '.png' for n in NAMES]
    # the videos without masks of the A2D layout are left out
    assert not missed & set(meta['videos']['train'] + meta['videos']['valid'])
    # the test meta file lists no video
    assert read_json(root, 'meta_expressions', 'test',
                     'meta_expressions.json') == {'videos': {}}
    assert sorted(os.listdir(root)) == [
        'meta_expressions', 'synthetic_meta.json', 'train', 'valid'
    ]


def test_masks_sentences_and_categories_are_the_scenes(tiny, scenes):
    root, meta = tiny
    for scene in (s for s in scenes if not s.missed):
        split = SPLITS[scene.subset]
        vid = scene.video_id
        objects = read_json(root, split, 'meta.json')['videos'][vid][
            'objects']
        exps = read_json(root, 'meta_expressions', split,
                         'meta_expressions.json')['videos'][vid][
                             'expressions']
        bgr = scene.frames()
        for t, name in enumerate(NAMES):
            png = Image.open(osp.join(root, split, 'Annotations', vid,
                                      name + '.png'))
            assert png.mode == 'P'
            label = np.array(png)
            # the palette index is the object id: k + 1 for actor k
            np.testing.assert_array_equal(label, scene.labels[t])
            for k in range(len(scene.tracks)):
                np.testing.assert_array_equal(label == k + 1,
                                              scene.labels[t] == k + 1)
            jpg = cv2.imread(osp.join(root, split, 'JPEGImages', vid,
                                      name + '.jpg'))
            assert jpg.shape == (TINY['height'], TINY['width'], 3)
            # JPEG at quality 95: close to the rendered frame
            diff = np.abs(jpg.astype(int) - bgr[t].astype(int))
            assert diff.mean() < 4, (vid, name, diff.mean())
        assert sorted(objects, key=int) == [
            str(k + 1) for k in range(len(scene.tracks))
        ]
        expected_exps = {}
        for k, track in enumerate(scene.tracks):
            obj = objects[str(k + 1)]
            assert obj['category'] == track.actor
            assert obj['frames'] == [
                n for t, n in enumerate(NAMES)
                if (scene.labels[t] == k + 1).any()
            ]
            for sentence in scene.sentences[k]:
                expected_exps[str(len(expected_exps))] = dict(
                    exp=sentence, obj_id=str(k + 1))
        assert exps == expected_exps
        for exp_id in exps:
            assert meta['cues'][f'{vid}/{exp_id}'] == scene.cues[int(
                exps[exp_id]['obj_id']) - 1]


def test_loads_in_frame_and_video_mode(tiny, scenes):
    root, _ = tiny
    by_id = {s.video_id: s for s in scenes}
    frame_ds = RefYouTubeVOSDataset(
        root,
        split='train',
        sample_mode='frame',
        pipeline=[
            dict(type='LoadListedFrames'),
            dict(type='LoadReferObjectMask')
        ])
    train = [s for s in scenes if s.subset == 0 and not s.missed]
    num_exps = sum(len(x) for s in train for x in s.sentences)
    assert frame_ds.has_gt
    assert frame_ds.stats['videos'] == 3
    assert len(frame_ds) == num_exps * len(NAMES)
    # one sample of each video: its mask is the scene's label == k + 1
    checked = set()
    for i in range(len(frame_ds)):
        info = frame_ds.get_data_info(i)
        if info['video_id'] in checked or info['frame_id'] != 3:
            continue
        checked.add(info['video_id'])
        out = frame_ds[i]
        scene = by_id[info['video_id']]
        (k, ) = [o - 1 for o in info['obj_ids']]
        assert info['category'] == scene.tracks[k].actor
        assert info['sentence'] in scene.sentences[k]
        np.testing.assert_array_equal(
            out['gt_mask'], (scene.labels[2] == k + 1).astype(np.uint8))
        assert len(out['imgs']) == len(NAMES)
    assert checked == {s.video_id for s in train}

    video_ds = RefYouTubeVOSDataset(
        root,
        split='valid',
        sample_mode='video',
        pipeline=[
            dict(type='LoadListedFrames'),
            dict(type='mmaction.Resize', scale=(64, 64), keep_ratio=False),
            dict(type='SampleVideoWindows', clip_len=8),
            dict(type='LoadVideoObjectMasks'),
            dict(type='PackReferVideoInputs'),
        ],
        test_mode=True)
    valid = sorted((s for s in scenes if s.subset == 1 and not s.missed),
                   key=lambda s: s.video_id)
    assert video_ds.has_gt and len(video_ds) == len(valid) == 2
    assert video_ds.stats['excluded_videos'] == 0
    from pycocotools import mask as mask_utils
    for i, scene in enumerate(valid):
        packed = video_ds[i]
        meta = packed['data_samples'].metainfo
        assert meta['video_id'] == scene.video_id
        assert tuple(packed['inputs'].shape) == (8, 64, 64, 3)
        assert meta['ori_shape'] == (TINY['height'], TINY['width'])
        assert meta['frame_names'] == [n + '.jpg' for n in NAMES]
        assert [e['sentence'] for e in meta['expressions']] == [
            ' '.join(x.split()) for per in scene.sentences for x in per
        ]
        for k in range(len(scene.tracks)):
            decoded = np.stack([
                mask_utils.decode(r)
                for r in meta['gt_object_rles'][str(k + 1)]
            ])
            np.testing.assert_array_equal(
                decoded, (scene.labels == k + 1).astype(np.uint8))


def test_same_arguments_same_bytes(tiny, tmp_path):
    """Every file, JPEG and PNG included (OpenCV's libjpeg and PIL's PNG
    encoder are deterministic for the same input)."""
    root, _ = tiny
    again = tmp_path / 'again'
    generate(again)
    first, second = file_hashes(root), file_hashes(str(again))
    assert sorted(first) == sorted(second)
    assert any(n.endswith('.jpg') for n in first)
    assert any(n.endswith('.png') for n in first)
    assert first == second
    # another seed: other videos, other files
    other = tmp_path / 'other'
    generate(other, seed=1)
    assert set(file_hashes(str(other))) != set(first)


def test_refuses_non_empty_target_and_cli(tmp_path, capsys):
    target = tmp_path / 'data'
    generate(target, num_train=1, num_test=1, num_missed=0)
    with pytest.raises(FileExistsError, match='overwrite'):
        generate(target, num_train=1, num_test=1, num_missed=0)
    with pytest.raises(ValueError, match='height must be an integer >= 32'):
        generate(tmp_path / 'small', height=16)
    main = load_script(CLI, 'generate_synthetic_a2d_ytvos').main
    out = str(tmp_path / 'cli')
    args = [
        out, '--layout', 'ytvos', '--num-train', '0', '--num-test', '2',
        '--num-missed', '0', '--frames', '8', '--height', '32', '--width',
        '48'
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert 'Ref-YouTube-VOS layout: train 0 videos, valid 2 videos' in printed
    assert read_json(out, 'synthetic_meta.json')['params']['num_train'] == 0
    assert os.listdir(osp.join(out, 'train', 'JPEGImages')) == []
    assert len(read_json(out, 'meta_expressions', 'valid',
                         'meta_expressions.json')['videos']) == 2
    assert main(args) == 2  # exists, no --overwrite
    assert 'overwrite' in capsys.readouterr().err
