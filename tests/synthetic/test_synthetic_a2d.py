# Copyright (c) cmdyseg contributors. All rights reserved.
"""The synthetic A2D-layout generator: determinism, layout, truth of the
masks and sentences, atomic writing, and reading it with the real loader.

The tiny dataset (6 + 3 videos of 12 frames, 48 x 64 px) is generated once
per module and takes well under a second.
"""
import os
import os.path as osp
import re
import time

import cv2
import h5py
import numpy as np
import pytest
from load_script import load_script

from cmdyseg import synthetic as syn
from cmdyseg.synthetic import scenes, writer

ROOT = osp.join(osp.dirname(__file__), '..', '..')
CLI = osp.join(ROOT, 'tools', 'dataset_converters',
               'generate_synthetic_a2d.py')
CONFIG = osp.join(ROOT, 'configs', '_base_', 'datasets', 'synthetic_a2d.py')
TINY = dict(
    num_train=6, num_test=3, num_missed=2, num_frames=12, height=48,
    width=64)
# the position phrases of the generator (motion phrases such as "moving to
# the left" do not match)
POSITION_PHRASE = re.compile(
    r'\b((on|at|near) the (left|right|top|bottom)|(left|right) side|'
    r'(upper|lower) part)\b')


def generate(path, seed=0, **kwargs):
    args = dict(TINY)
    args.update(kwargs)
    return syn.generate_synthetic_a2d(str(path), seed=seed, **args)


def all_files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


def read_video(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames  # BGR


def read_h5(path):
    with h5py.File(path, 'r') as f:
        return {k: f[k][()] for k in f}


def masks_hw(rec):
    """``reMask`` as (N, H, W)."""
    m = rec['reMask']
    if m.ndim == 2:
        m = m[None]
    return m.transpose(0, 2, 1)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('syn') / 'synthetic_a2d'
    meta = generate(root)
    meta['_generated_at'] = time.time()
    return str(root), meta


# ------------------------------------------------------------ determinism
def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    root, meta = tiny
    # HDF5 object timestamps have 1 s resolution: regenerate at least 1 s
    # later so that a stored timestamp would show
    time.sleep(max(0., 1.1 - (time.time() - meta['_generated_at'])))
    again = tmp_path / 'again'
    generate(again)
    first, second = all_files(root), all_files(str(again))
    assert sorted(first) == sorted(second)
    assert len(first) > 20  # mp4s, h5s and the text files
    for name in first:
        assert first[name] == second[name], name
    other = tmp_path / 'other'
    generate(other, seed=1)
    third = all_files(str(other))
    for name in ('Release/videoset.csv', 'a2d_annotation.txt',
                 'synthetic_meta.json'):
        assert third[name] != first[name], name
    # the video ids (hence the file names) depend on the seed
    assert not set(first) & {n for n in third if n.endswith('.mp4')}


def test_bad_arguments(tmp_path):
    for kwargs in (dict(height=47), dict(width=16), dict(num_frames=4),
                   dict(num_train=-1), dict(num_train=0, num_test=0)):
        with pytest.raises(ValueError):
            generate(tmp_path / 'x', **kwargs)
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------- layout
def test_text_files_follow_a2d_layout(tiny):
    root, meta = tiny
    with open(osp.join(root, 'Release', 'videoset.csv'), 'rb') as f:
        raw = f.read()
    assert b'\r' not in raw and raw.endswith(b'\n')
    rows = [r.split(',') for r in raw.decode().splitlines()]
    assert all(len(r) == 9 for r in rows)
    assert [int(r[8]) for r in rows].count(0) == 6 + 1  # + 1 missed
    assert [int(r[8]) for r in rows].count(1) == 3 + 1
    for vid, label, start, end, h, w, total, n_ann, subset in rows:
        assert len(vid) == 11
        assert (int(h), int(w), int(total)) == (48, 64, 12)
        assert int(start) < int(end)
        info = meta['videos'][vid]
        assert int(n_ann) == len(info['annotated_frames'])
        assert 3 <= int(n_ann) <= 5
        actor, action = divmod(int(label), 10)
        assert 1 <= actor <= len(syn.ACTORS)
        assert 1 <= action <= len(syn.ACTIONS)
        frames = read_video(
            osp.join(root, 'Release', 'clips320H', vid + '.mp4'))
        assert len(frames) == 12 and frames[0].shape == (48, 64, 3)
    videos = {r[0] for r in rows}

    with open(osp.join(root, 'a2d_missed_videos.txt'), 'rb') as f:
        raw = f.read()
    assert not raw.endswith(b'\n')
    missed = raw.decode().split('\n')
    assert len(missed) == 2 and set(missed) <= videos
    for vid in missed:  # clip and sentences, but no masks
        assert osp.isfile(
            osp.join(root, 'Release', 'clips320H', vid + '.mp4'))
        assert not osp.exists(
            osp.join(root, 'a2d_annotation_with_instances', vid))

    with open(osp.join(root, 'a2d_annotation.txt'), 'rb') as f:
        lines = f.read().decode().split('\n')
    assert lines[0] == 'video_id,instance_id,query' and lines[-1] == ''
    rows = [line.split(',') for line in lines[1:-1]]
    assert all(len(r) == 3 and r[1].isdigit() and r[2] for r in rows)
    assert {r[0] for r in rows} <= videos
    assert set(missed) <= {r[0] for r in rows}
    labelled = [i for i in meta['instances']]
    assert len(rows) == sum(len(i['sentences']) for i in labelled) + sum(
        meta['stats'][s]['missed_sentences'] for s in ('train', 'test'))


def test_masks_shapes_boxes_codes_and_colours(tiny):
    root, meta = tiny
    by_key = {(i['video_id'], i['instance_id']): i
              for i in meta['instances']}
    ann_root = osp.join(root, 'a2d_annotation_with_instances')
    ns, checked = set(), 0
    for vid in sorted(os.listdir(ann_root)):
        info = meta['videos'][vid]
        names = sorted(os.listdir(osp.join(ann_root, vid)))
        assert names == [f'{f:05d}.h5' for f in info['annotated_frames']]
        frames = read_video(
            osp.join(root, 'Release', 'clips320H', vid + '.mp4'))
        for name in names:
            frame_id = int(name[:5])
            rec = read_h5(osp.join(ann_root, vid, name))
            assert set(rec) == {'instance', 'reMask', 'reBBox', 'id'}
            ids = rec['instance'].tolist()
            n = len(ids)
            ns.add(n)
            assert n >= 1 and ids == sorted(set(ids))
            # 2-D (W x H) for one instance, N x W x H otherwise
            expected = (64, 48) if n == 1 else (n, 64, 48)
            assert rec['reMask'].shape == expected
            assert rec['reBBox'].shape == (4, n) and rec['id'].shape == (n, )
            masks = masks_hw(rec)
            assert masks.max() == 1
            # visible parts: masks never overlap
            assert masks.sum(0).max() == 1
            frame = frames[frame_id - 1].astype(np.float64)
            background = masks.sum(0) == 0
            for k, mask, box, code in zip(ids, masks, rec['reBBox'].T,
                                          rec['id']):
                inst = by_key[(vid, k)]
                assert frame_id in inst['frames']
                assert code == inst['code'] == (
                    10 * (syn.ACTORS.index(inst['actor']) + 1) +
                    syn.ACTIONS.index(inst['action']) + 1)
                ys, xs = np.nonzero(mask)
                assert len(ys) > 0
                assert box.tolist() == [
                    xs.min(), ys.min(), xs.max(), ys.max()
                ]
                # the decoded pixels under the mask have the actor's colour
                colour = np.array(syn.COLOURS[inst['colour']], np.float64)
                inner = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0
                if inner.sum() >= 5:
                    close = np.abs(frame[inner] - colour).max(1) < 40
                    assert close.mean() > 0.9, (vid, frame_id, k)
                    checked += 1
                # ... and the background does not
                assert (np.abs(frame[background] - colour).max(1)
                        < 40).mean() < 0.02
            # an instance not listed in this frame is not visible in it
            for inst in meta['instances']:
                if inst['video_id'] == vid and inst['instance_id'] not in ids:
                    assert frame_id not in inst['frames']
    assert 1 in ns and max(ns) > 1  # both reMask layouts occur
    assert checked > 20


# ------------------------------------------------------- scenes and cues
def test_cue_scenes_and_sentences_are_true(tiny):
    root, meta = tiny
    assert meta['metainfo'] == dict(
        actors=list(syn.ACTORS), actions=list(syn.ACTIONS))
    assert syn.instance_cues(root) == syn.instance_cues(meta)
    insts = meta['instances']
    cues = {i['cue'] for i in insts}
    assert cues == {'none', 'position', 'motion'}
    for inst in insts:
        others = [
            o for o in insts if o['video_id'] == inst['video_id']
            and o['instance_id'] != inst['instance_id']
        ]
        twins = [
            o for o in others
            if (o['colour'], o['actor']) == (inst['colour'], inst['actor'])
        ]
        # distinct even for a loader that drops case-insensitive duplicates
        assert len({s.lower().rstrip('.')
                    for s in inst['sentences']}) == 2
        for sentence in inst['sentences']:
            text = sentence.lower()
            assert inst['colour'] in text
        if inst['cue'] == 'none':
            assert not twins
        elif inst['cue'] == 'position':
            # a twin that moves the same way: only the position tells
            assert len(twins) == 1 and twins[0]['cue'] == 'position'
            assert twins[0]['action'] == inst['action']
            for sentence in inst['sentences']:
                assert POSITION_PHRASE.search(sentence.lower()), sentence
        else:
            # a twin that only moves differently: only the motion tells
            assert len(twins) == 1 and twins[0]['cue'] == 'motion'
            assert twins[0]['action'] != inst['action']
            for sentence in inst['sentences']:
                assert not POSITION_PHRASE.search(sentence.lower()), sentence
                phrases = scenes._ACTION_PHRASES[inst['action']]
                assert any(p in sentence.lower() for p in phrases)


def _centroids(root, inst):
    out = []
    for frame_id in inst['frames']:
        rec = read_h5(
            osp.join(root, 'a2d_annotation_with_instances',
                     inst['video_id'], f'{frame_id:05d}.h5'))
        mask = masks_hw(rec)[rec['instance'].tolist().index(
            inst['instance_id'])]
        ys, xs = np.nonzero(mask)
        out.append((xs.mean(), ys.mean(), xs.min(), xs.max(), ys.min(),
                    ys.max()))
    return np.array(out)


def test_masks_agree_with_positions_and_motions(tiny):
    """What the sentences say is what the masks show."""
    root, meta = tiny
    h, w = meta['params']['height'], meta['params']['width']
    moved = placed = 0
    for inst in meta['instances']:
        c = _centroids(root, inst)
        text = ' '.join(inst['sentences']).lower()
        if POSITION_PHRASE.search(text):
            if re.search(r'on the left|at the left|left side', text):
                assert c[:, 3].max() < w / 2
            if re.search(r'on the right|at the right|right side', text):
                assert c[:, 2].min() >= w / 2
            if re.search(r'top|upper', text):
                assert c[:, 5].max() < h / 2
            if re.search(r'bottom|lower', text):
                assert c[:, 4].min() >= h / 2
            placed += 1
        step = {'moving_left': (0, -1), 'moving_right': (0, 1),
                'moving_up': (1, -1), 'moving_down': (1, 1)}
        if inst['action'] in step and len(c) >= 2:
            axis, sign = step[inst['action']]
            assert sign * (c[-1, axis] - c[0, axis]) > 1.5, inst
            moved += 1
    assert moved > 0 and placed > 0


# ------------------------------------------------- atomic, refuse, CLI
def test_refuses_non_empty_target_and_overwrites(tmp_path):
    target = tmp_path / 'data'
    target.mkdir()
    (target / 'keep.txt').write_text('x')
    with pytest.raises(FileExistsError, match='--overwrite'):
        generate(target, num_train=1, num_test=0, num_missed=0)
    assert os.listdir(target) == ['keep.txt']
    generate(target, num_train=1, num_test=0, num_missed=0, overwrite=True)
    assert not (target / 'keep.txt').exists()
    assert (target / 'Release' / 'videoset.csv').is_file()
    assert sorted(os.listdir(tmp_path)) == ['data']  # no temp dirs left
    # an existing empty folder is fine without overwrite
    empty = tmp_path / 'empty'
    empty.mkdir()
    generate(empty, num_train=1, num_test=0, num_missed=0)
    assert (empty / 'a2d_annotation.txt').is_file()


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):

    def broken(path, frames):
        raise RuntimeError('disk full')

    monkeypatch.setattr(writer, '_write_video', broken)
    with pytest.raises(RuntimeError, match='disk full'):
        generate(tmp_path / 'data', num_train=1, num_test=0, num_missed=0)
    assert os.listdir(tmp_path) == []


def _load_cli():
    return load_script(CLI, 'generate_synthetic_a2d')


def test_cli(tmp_path, capsys):
    main = _load_cli().main
    out = str(tmp_path / 'cli')
    args = [
        out, '--seed', '3', '--num-train', '3', '--num-test', '1',
        '--frames', '10', '--height', '32', '--width', '48'
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert 'train: 3 videos' in printed and 'test: 1 videos' in printed
    meta = syn.load_synthetic_meta(out)
    assert meta['params']['seed'] == 3
    assert meta['params']['num_frames'] == 10
    assert main(args) == 2  # exists, no --overwrite
    assert 'overwrite' in capsys.readouterr().err
    assert main(args + ['--overwrite']) == 0


# ----------------------------------------------------- the real loader
def test_config_metainfo_matches_generator():
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    assert cfg.metainfo == syn.SYNTHETIC_A2D_METAINFO
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        ds = loader.dataset
        assert ds.type == 'A2DSentencesDataset'
        assert ds.data_root == 'data/synthetic_a2d'
        assert ds.metainfo == syn.SYNTHETIC_A2D_METAINFO
        sample = [t for t in ds.pipeline if t.type == 'SampleReferClip']
        resize = [t for t in ds.pipeline if t.type == 'mmaction.Resize']
        assert sample[0].clip_len == 8 and resize[0].scale == (64, 64)
    assert cfg.train_dataloader.dataset.split == 'train'
    assert cfg.test_dataloader.dataset.split == 'test'


def test_loads_through_a2d_sentences_dataset(tiny):
    pytest.importorskip('mmaction')
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from cmdyseg.datasets import A2DSentencesDataset
    from cmdyseg.datasets.file_io import DataFileError
    from cmdyseg.structures import ReferSegDataSample
    init_default_scope('cmdyseg')
    root, meta = tiny
    cfg = Config.fromfile(CONFIG)
    for split, pipeline in (('train', cfg.train_pipeline),
                            ('test', cfg.test_pipeline)):
        ds = A2DSentencesDataset(
            data_root=root,
            split=split,
            metainfo=cfg.metainfo,
            pipeline=pipeline,
            test_mode=split == 'test')
        stats = meta['stats'][split]
        assert len(ds) == stats['samples']
        # the listed videos were dropped, not read
        assert ds.stats['missed_rows'] == sum(
            meta['stats'][s]['missed_sentences'] for s in ('train', 'test'))
        subset = 0 if split == 'train' else 1
        cues = syn.instance_cues(meta)
        seen_cues = set()
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            assert meta['videos'][info['video_id']]['subset'] == subset
            assert not meta['videos'][info['video_id']]['missed']
            seen_cues.add(cues[(info['video_id'], int(info['instance_id']))])
        if split == 'train':
            assert seen_cues == set(syn.CUES)
        out = ds[0]
        info = ds.get_data_info(0)
        inputs, sample = out['inputs'], out['data_samples']
        assert isinstance(sample, ReferSegDataSample)
        assert tuple(inputs.shape) == (3, 8, 64, 64)
        assert tuple(sample.gt_mask.data.shape) == (1, 64, 64)
        assert sample.gt_mask.data.sum() > 0
        assert sample.video_id == info['video_id']
        assert sample.ori_shape == (48, 64)
        inst = {(x['video_id'], x['instance_id']): x
                for x in meta['instances']}[(info['video_id'],
                                             int(info['instance_id']))]
        assert sample.actor_action == inst['code']
        assert ds.decode_actor_action(sample.actor_action) == (
            inst['actor'], inst['action'])
        # RGB clip: the key frame under the mask has the actor's colour
        key = inputs[:, 4].permute(1, 2, 0).numpy().astype(np.float64)
        mask = sample.gt_mask.data[0].numpy() > 0
        rgb = np.array(syn.COLOURS[inst['colour']][::-1], np.float64)
        assert np.median(np.abs(key[mask] - rgb).max(1)) < 40
        if split == 'test':
            assert tuple(sample.ori_gt_mask.data.shape) == (1, 48, 64)
    # without the exclusion list the missed videos (no masks) break it
    with pytest.raises(DataFileError, match='mask folder'):
        A2DSentencesDataset(
            data_root=root,
            split='train',
            metainfo=cfg.metainfo,
            missed_file=None,
            pipeline=[])
