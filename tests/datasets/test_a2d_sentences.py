# Copyright (c) cmdyseg contributors. All rights reserved.
import os
import os.path as osp
import pickle
import re
import shutil
import warnings

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from refer_data_fixtures import (MASK_A0_F2, MASK_A0_F9, MASK_A1_F9,
                                 MASK_A1_F9_DUP, MASK_B0_F3, code_to_index,
                                 load_extract_tool)
from shared_data import requires_shared_data, shared_data_path

from cmdyseg.datasets import (A2D_ACTIONS, A2D_ACTORS, A2DSentencesDataset,
                              DataFileError, parse_a2d_annotation)
from cmdyseg.datasets.a2d_sentences import parse_a2d_videoset, read_id_list
from cmdyseg.registry import DATASETS

REAL = shared_data_path('a2d_sentences')
needs_real = requires_shared_data(
    'a2d_sentences/a2d_annotation.txt',
    'a2d_sentences/a2d_missed_videos.txt',
    what='the real A2D Sentences annotation files')

VIDEO_PIPE = [
    dict(type='mmaction.OpenCVInit'),
    dict(type='SampleReferClip', clip_len=8),
    dict(type='mmaction.OpenCVDecode'),
    dict(type='LoadA2DInstanceMask'),
]


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('cmdyseg')


def keys(ds):
    return [(d['video_id'], d['instance_id'], d['frame_id'])
            for d in (ds.get_data_info(i) for i in range(len(ds)))]


def clip_indices(imgs):
    return [code_to_index(img[..., 0].mean()) for img in imgs]


# ---------------------------------------------------------------- real file
@needs_real
def test_real_annotation_all_rows_parse():
    path = osp.join(REAL, 'a2d_annotation.txt')
    rows, stats = parse_a2d_annotation(path)
    assert stats['rows'] == 6655
    assert stats['copy_dropped'] == 1
    assert stats['duplicates_dropped'] == 0
    assert stats['kept'] == len(rows) == 6654
    assert stats['spaces_fixed'] == 231
    assert not any(r['video_id'] == 'T6bNPuKV-wY'
                   and r['sentence'] == 'bird standing in the beach'
                   for r in rows)
    for r in rows:
        assert isinstance(r['instance_id'], int) and r['instance_id'] >= 0
        assert r['sentence'] == ' '.join(r['sentence'].split())
    assert max(len(r['sentence'].split()) for r in rows) == 20
    assert len({r['video_id'] for r in rows}) == 3754
    # case is kept, the text encoder lower-cases
    assert any(r['sentence'] != r['sentence'].lower() for r in rows)

    rows_keep, stats_keep = parse_a2d_annotation(path, copy_instance='keep')
    assert len(rows_keep) == 6655 and stats_keep['copy_kept'] == 1
    copy = [r for r in rows_keep
            if r['sentence'] == 'bird standing in the beach']
    assert copy[0]['video_id'] == 'T6bNPuKV-wY'
    assert copy[0]['instance_id'] == 1


@needs_real
def test_real_missed_videos():
    ids = read_id_list(osp.join(REAL, 'a2d_missed_videos.txt'))
    assert len(ids) == len(set(ids)) == 28
    rows, _ = parse_a2d_annotation(osp.join(REAL, 'a2d_annotation.txt'))
    assert not set(ids) & {r['video_id'] for r in rows}


def test_parse_errors_name_file_and_line(tmp_path):
    p = tmp_path / 'ann.txt'
    p.write_text('video_id,instance_id,query\nv,0,ok\nv,one,bad id\n')
    with pytest.raises(ValueError, match=r'ann.txt:3: instance_id .one.'):
        parse_a2d_annotation(str(p))
    p.write_text('vid,inst,q\n')
    with pytest.raises(ValueError, match='ann.txt:1: expected header'):
        parse_a2d_annotation(str(p))
    p.write_text('video_id,instance_id,query\nv,0,   \n')
    with pytest.raises(ValueError, match='ann.txt:2: empty query'):
        parse_a2d_annotation(str(p))
    v = tmp_path / 'videoset.csv'
    v.write_text('a,11,0,1,320,480,10,2,0\nb,11,0,1\n')
    with pytest.raises(ValueError, match='videoset.csv:2: expected 9'):
        parse_a2d_videoset(str(v))


# ------------------------------------------------------------------ index
def test_index_train_and_test(a2d_root):
    ds = A2DSentencesDataset(data_root=a2d_root, split='train')
    assert keys(ds) == [('vidA', '0', 2), ('vidA', '0', 9), ('vidA', '1', 9)]
    infos = [ds.get_data_info(i) for i in range(3)]
    assert [d['sentence'] for d in infos] == [
        'the man on the Left', 'the man on the Left',
        'bird flying to the left'
    ]
    assert [d['actor_action'] for d in infos] == [11, 11, 46]
    assert [d['mask_indices'] for d in infos] == [[0], [0], [1]]
    assert all(d['total_frames'] == 10 for d in infos)
    assert infos[0]['filename'].endswith(
        osp.join('Release', 'clips320H', 'vidA.mp4'))
    s = ds.stats
    assert s['copy_dropped'] == 1 and s['duplicates_dropped'] == 1
    assert s['missed_rows'] == 1 and s['other_split_rows'] == 1
    # inst 1 absent at frame 2, inst 2 absent at frames 2 and 9
    assert s['absent_instance_frames'] == 3
    assert s['duplicate_instance_frames'] == 1
    assert s['frames_with_extra_masks'] == 1
    assert ds.num_skipped == 0

    test = A2DSentencesDataset(data_root=a2d_root, split='test')
    assert keys(test) == [('vidB', '0', 3)]
    assert test.get_data_info(0)['actor_action'] == 54
    assert test.decode_actor_action(54) == ('car', 'flying')
    assert test.decode_actor_action(-1) == (None, None)

    keep = A2DSentencesDataset(
        data_root=a2d_root, split='test', copy_instance='keep')
    # '1 (copy)' read as instance 1, which vidB's mask file does not list
    assert keys(keep) == [('vidB', '0', 3)]
    assert keep.stats['copy_kept'] == 1

    with pytest.raises(ValueError, match='split'):
        A2DSentencesDataset(data_root=a2d_root, split='val')


def test_metainfo_default_and_override(a2d_root):
    ds = A2DSentencesDataset(data_root=a2d_root, split='test')
    assert ds.metainfo['actors'] == A2D_ACTORS
    assert ds.metainfo['actions'] == A2D_ACTIONS
    assert A2D_ACTORS.index('dog') + 1 == 7
    assert A2D_ACTIONS.index('none') + 1 == 9
    other = A2DSentencesDataset(
        data_root=a2d_root,
        split='test',
        metainfo=dict(actors=('a', 'b', 'c', 'd', 'e'), actions=('x', ) * 4))
    assert other.decode_actor_action(54) == ('e', 'x')
    assert other.decode_actor_action(61) == (None, 'x')
    assert A2DSentencesDataset.METAINFO['actors'] == A2D_ACTORS


def test_registered(a2d_root):
    ds = DATASETS.build(
        dict(type='A2DSentencesDataset', data_root=a2d_root, split='test'))
    assert isinstance(ds, A2DSentencesDataset) and len(ds) == 1


def test_video_not_in_videoset(a2d_root):
    with open(osp.join(a2d_root, 'a2d_annotation.txt'), 'a') as f:
        f.write('vidZ,0,unknown video\n')
    with pytest.raises(ValueError, match='vidZ.*videoset.csv'):
        A2DSentencesDataset(data_root=a2d_root)


# ------------------------------------------------------- masks and frames
def test_masks_orientation_and_glitches(a2d_root):
    ds = A2DSentencesDataset(
        data_root=a2d_root,
        split='train',
        pipeline=[dict(type='LoadA2DInstanceMask')])
    expected = [MASK_A0_F2, MASK_A0_F9, MASK_A1_F9]
    for i, mask in enumerate(expected):
        out = ds[i]
        assert out['gt_mask'].shape == (32, 48)  # H x W, transposed back
        assert out['gt_mask'].dtype == np.uint8
        np.testing.assert_array_equal(out['gt_mask'], mask)
        np.testing.assert_array_equal(out['ori_gt_mask'], mask)

    test = A2DSentencesDataset(
        data_root=a2d_root,
        split='test',
        pipeline=[dict(type='LoadA2DInstanceMask')])
    np.testing.assert_array_equal(test[0]['gt_mask'], MASK_B0_F3)

    union = A2DSentencesDataset(
        data_root=a2d_root,
        split='train',
        duplicate_instance='union',
        pipeline=[dict(type='LoadA2DInstanceMask')])
    assert union.get_data_info(2)['mask_indices'] == [1, 2]
    np.testing.assert_array_equal(union[2]['gt_mask'],
                                  MASK_A1_F9 | MASK_A1_F9_DUP)


def test_clip_from_mp4_padded_both_ends(a2d_root):
    ds = A2DSentencesDataset(
        data_root=a2d_root, split='train', pipeline=VIDEO_PIPE)
    first, last = ds[0], ds[1]  # frames 2 and 9 of a 10-frame video
    assert first['frame_inds'].tolist() == [0, 0, 0, 0, 1, 2, 3, 4]
    assert clip_indices(first['imgs']) == [0, 0, 0, 0, 1, 2, 3, 4]
    assert clip_indices(last['imgs']) == [4, 5, 6, 7, 8, 9, 9, 9]
    # annotated frame (frame_id - 1) in the middle
    assert clip_indices(last['imgs'])[last['key_frame_index']] == 8
    img = first['imgs'][0]
    assert img.shape == (32, 48, 3)
    assert abs(float(img[..., 2].mean()) - 200) < 8  # RGB order
    assert float(img[..., 1].mean()) < 8
    assert tuple(first['original_shape']) == (32, 48)
    np.testing.assert_array_equal(first['gt_mask'], MASK_A0_F2)


def test_clip_from_extracted_frames(a2d_root):
    main = load_extract_tool().main
    frame_dir = osp.join(a2d_root, 'Release', 'frames320H')
    assert main([osp.join(a2d_root, 'Release', 'clips320H'), frame_dir]) == 0
    ds = A2DSentencesDataset(
        data_root=a2d_root,
        split='train',
        frame_dir='Release/frames320H',
        pipeline=[
            dict(type='SampleReferClip', clip_len=8),
            dict(type='mmaction.RawFrameDecode'),
            dict(type='LoadA2DInstanceMask'),
        ])
    info = ds.get_data_info(0)
    assert info['frame_dir'] == osp.join(frame_dir, 'vidA')
    assert info['offset'] == 1 and 'filename' not in info
    assert info['total_frames'] == 10
    assert clip_indices(ds[0]['imgs']) == [0, 0, 0, 0, 1, 2, 3, 4]
    assert clip_indices(ds[1]['imgs']) == [4, 5, 6, 7, 8, 9, 9, 9]
    assert abs(float(ds[0]['imgs'][0][..., 2].mean()) - 200) < 8
    # an undecodable frame: one DataFileError names the frame file and
    # the sample, with no chained traceback (mmcv fails deep inside)
    with open(osp.join(frame_dir, 'vidA', '00001.jpg'), 'wb') as f:
        f.write(b'not a jpeg')
    with pytest.raises(DataFileError) as info:
        ds[0]
    err = info.value
    assert err.path == osp.join(frame_dir, 'vidA', '00001.jpg')
    assert re.search(r"frames320H/vidA/00001\.jpg: frame image does not "
                     r"decode .*sample 0 \(video 'vidA', annotated frame 2, "
                     r"instance 0\)", str(err)), str(err)
    assert '\n' not in str(err)
    assert err.__cause__ is None and err.__suppress_context__
    # a frame file removed after indexing
    os.remove(osp.join(frame_dir, 'vidA', '00006.jpg'))
    with pytest.raises(DataFileError, match=r"00006\.jpg: frame file does "
                       r"not exist .*sample 1 \(video 'vidA', annotated "
                       r"frame 9"):
        ds[1]


def test_data_file_error_pickles():
    err = pickle.loads(pickle.dumps(DataFileError('/d/00002.h5', 'bad')))
    assert isinstance(err, OSError)
    assert (err.path, err.reason) == ('/d/00002.h5', 'bad')
    assert str(err) == '/d/00002.h5: bad'


# ------------------------------------------------------- missing / corrupt
def test_missing_video_error_or_skip(a2d_root):
    path = osp.join(a2d_root, 'Release', 'clips320H', 'vidA.mp4')
    os.remove(path)
    with pytest.raises(DataFileError, match='vidA.mp4'):
        A2DSentencesDataset(data_root=a2d_root, split='train')
    with pytest.warns(UserWarning, match='vidA.mp4'):
        ds = A2DSentencesDataset(
            data_root=a2d_root, split='train', on_missing='skip')
    assert len(ds) == 0
    assert ds.num_skipped == 1  # one video, counted once
    assert ds.skipped[0][0] == path


def test_corrupt_video_error(a2d_root):
    path = osp.join(a2d_root, 'Release', 'clips320H', 'vidB.mp4')
    with open(path, 'wb') as f:
        f.write(b'\x00not a video' * 50)
    with pytest.raises(DataFileError, match='vidB.mp4'):
        A2DSentencesDataset(data_root=a2d_root, split='test')
    with pytest.warns(UserWarning, match='vidB.mp4'):
        ds = A2DSentencesDataset(
            data_root=a2d_root, split='test', on_missing='skip')
    assert len(ds) == 0 and ds.num_skipped == 1


def test_corrupt_and_missing_mask_files(a2d_root):
    bad = osp.join(a2d_root, 'a2d_annotation_with_instances', 'vidA',
                   '00009.h5')
    with open(bad, 'wb') as f:
        f.write(b'garbage')
    # the default on_missing='error': one line names the file, the sample
    # (video, frame) and the way to skip it, without a chained traceback
    with pytest.raises(DataFileError) as info:
        A2DSentencesDataset(data_root=a2d_root, split='train')
    err = info.value
    assert err.path == bad
    assert re.fullmatch(
        r".*vidA/00009\.h5: cannot read as HDF5 \(.*\) \[A2DSentencesDataset"
        r": mask of video 'vidA' frame 9; on_missing='skip' skips it\]",
        str(err)), str(err)
    assert '\n' not in str(err)
    assert err.__cause__ is None and err.__suppress_context__
    with pytest.warns(UserWarning, match='00009.h5'):
        ds = A2DSentencesDataset(
            data_root=a2d_root, split='train', on_missing='skip')
    assert keys(ds) == [('vidA', '0', 2)]  # frame 9 dropped
    assert ds.num_skipped == 1

    shutil.rmtree(osp.join(a2d_root, 'a2d_annotation_with_instances',
                           'vidB'))
    with pytest.raises(DataFileError, match='vidB'):
        A2DSentencesDataset(data_root=a2d_root, split='test')


def test_file_broken_after_indexing(a2d_root):
    ds = A2DSentencesDataset(
        data_root=a2d_root, split='train', pipeline=VIDEO_PIPE)
    skip = A2DSentencesDataset(
        data_root=a2d_root,
        split='train',
        on_missing='skip',
        pipeline=VIDEO_PIPE)
    test = A2DSentencesDataset(
        data_root=a2d_root,
        split='train',
        on_missing='skip',
        test_mode=True,
        pipeline=VIDEO_PIPE)
    path = ds.get_data_info(0)['mask_path']
    assert path.endswith('00002.h5')
    with open(path, 'wb') as f:
        f.write(b'garbage')
    # error mode: one message names the file and the sample
    with pytest.raises(DataFileError, match=r"00002\.h5: cannot read as "
                       r"HDF5 .*sample 0 \(video 'vidA', annotated frame 2"):
        ds[0]
    # skip mode, training: warned, counted, another sample drawn
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter('always')
        np.random.seed(0)
        out = skip[0]
    assert out['frame_id'] == 9
    assert skip.num_skipped_at_load >= 1
    assert any('00002.h5' in str(w.message) for w in rec)
    # skip mode, test: dropping a sample would change the evaluated set
    with pytest.raises(DataFileError, match='00002.h5'):
        test[0]
    # a dataset indexed now skips the file up front
    with pytest.warns(UserWarning, match='00002.h5'):
        again = A2DSentencesDataset(
            data_root=a2d_root, split='train', on_missing='skip')
    assert again.num_skipped == 1
    assert keys(again) == [('vidA', '0', 9), ('vidA', '1', 9)]


def test_data_prefix_without_a_needed_key_is_named():
    with pytest.raises(ValueError, match="data_prefix needs a 'mask' entry"):
        A2DSentencesDataset(
            data_root='unused', data_prefix=dict(video='v'), lazy_init=True)


def test_data_file_error_from_a_dataloader_worker():
    """torch re-raises a worker's error as cls(worker traceback text): the
    message is then the original one line again."""
    from torch._utils import ExceptionWrapper
    try:
        try:
            raise OSError('h5py: bad superblock')
        except OSError as e:
            raise DataFileError('/d/vidA/00002.h5',
                                "cannot read as HDF5 (x) [sample 3]") from e
    except DataFileError:
        wrapped = ExceptionWrapper(where='in DataLoader worker process 0')
    with pytest.raises(DataFileError) as info:
        wrapped.reraise()
    err = info.value
    assert (err.path, err.reason) == ('/d/vidA/00002.h5',
                                      'cannot read as HDF5 (x) [sample 3]')
    assert str(err) == '/d/vidA/00002.h5: cannot read as HDF5 (x) [sample 3]'


def test_corrupt_video_at_load_names_video_and_sample(a2d_root):
    ds = A2DSentencesDataset(
        data_root=a2d_root, split='train', pipeline=VIDEO_PIPE)
    path = ds.get_data_info(1)['filename']
    with open(path, 'wb') as f:
        f.write(b'\x00not a video' * 50)
    with pytest.raises(DataFileError) as info:
        ds[1]
    assert info.value.path == path
    assert re.search(r"vidA\.mp4: .*\[A2DSentencesDataset: sample 1 "
                     r"\(video 'vidA', annotated frame 9, instance 0\)\]$",
                     str(info.value)), str(info.value)
    assert info.value.__cause__ is None
    # on_missing='skip' keeps skipping and counting at load time
    skip = A2DSentencesDataset(
        data_root=a2d_root, split='train', pipeline=VIDEO_PIPE,
        on_missing='skip', lazy_init=True)
    skip.data_list = ds.data_list
    skip.data_bytes, skip.data_address = ds.data_bytes, ds.data_address
    skip._fully_initialized = True
    with pytest.warns(UserWarning, match=r'vidA\.mp4.*\(skipped\)'):
        assert skip.prepare_data(1) is None
    assert skip.num_skipped_at_load == 1


@pytest.mark.parametrize('option,value,valid', [
    ('on_missing', 'ignore', "('error', 'skip')"),
    ('split', 'val', "('train', 'test')"),
    ('duplicate_instance', 'all', "('first', 'union')"),
    ('copy_instance', 'yes', "('drop', 'keep')"),
    ('filename_tmpl', 'frame.jpg', "'{:05d}.jpg'"),
    ('frame_dir', 3, 'folder path or None'),
    ('data_prefix', 'videos', "('video', 'mask')"),
])
def test_bad_options_are_one_line_value_errors(a2d_root, option, value,
                                               valid):
    with pytest.raises(ValueError) as info:
        A2DSentencesDataset(data_root=a2d_root, **{option: value})
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith(f'A2DSentencesDataset: {option} ')
    assert valid in message and repr(value) in message


def test_missing_split_file_is_named(a2d_root):
    os.remove(osp.join(a2d_root, 'Release', 'videoset.csv'))
    with pytest.raises(DataFileError, match=r'videoset\.csv: file does not '
                       r'exist \(the dataset option videoset_file'):
        A2DSentencesDataset(data_root=a2d_root)


def test_log_line_counts_the_samples_used(a2d_root, monkeypatch):
    from cmdyseg.datasets import base_refer_dataset
    lines = []
    monkeypatch.setattr(base_refer_dataset, 'print_log',
                        lambda msg, **kwargs: lines.append(msg))
    A2DSentencesDataset(data_root=a2d_root, split='train')
    assert len(lines) == 1
    assert lines[0].startswith('A2DSentencesDataset: 3 samples; 0 files '
                               'skipped; rows=7, ')
    lines.clear()
    # indices (and filter_cfg) shrink what the run uses: that is the count
    A2DSentencesDataset(data_root=a2d_root, split='train', indices=2)
    assert len(lines) == 1
    assert lines[0].startswith('A2DSentencesDataset: 2 samples (of 3 '
                               'indexed; indices=2); 0 files skipped')


def test_long_indexing_shows_progress(a2d_root, monkeypatch):
    from cmdyseg.datasets import base_refer_dataset
    lines = []
    monkeypatch.setattr(base_refer_dataset, 'print_log',
                        lambda msg, **kwargs: lines.append(msg))
    # a tiny index finishes before the first progress line...
    A2DSentencesDataset(data_root=a2d_root, split='train')
    assert not any('indexed' in line for line in lines)
    # ...a long one logs one every PROGRESS_INTERVAL_S seconds
    monkeypatch.setattr(A2DSentencesDataset, 'PROGRESS_INTERVAL_S', 0.0)
    with open(osp.join(a2d_root, 'Release', 'videoset.csv'), 'w') as f:
        f.write('vidA,11,0,1,320,480,10,2,0\n'
                'vidB,35,0,1,320,480,6,1,0\n'
                'vidM,11,0,1,320,480,6,1,0\n')
    lines.clear()
    A2DSentencesDataset(data_root=a2d_root, split='train')
    progress = [line for line in lines if 'indexed' in line]
    assert len(progress) == 1, lines
    assert re.fullmatch(r'A2DSentencesDataset: indexed 1/2 train videos '
                        r'\(\d+ s, ETA \d+ s\)', progress[0])
