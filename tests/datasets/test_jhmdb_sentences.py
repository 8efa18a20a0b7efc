# Copyright (c) cmdyseg contributors. All rights reserved.
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from refer_data_fixtures import code_to_index, puppet
from shared_data import requires_shared_data, shared_data_path

from cmdyseg.datasets import (DataFileError, JHMDBSentencesDataset,
                              parse_jhmdb_annotation, uniform_frame_ids)
from cmdyseg.datasets.file_io import load_puppet_mask, puppet_mask_shape

REAL = shared_data_path('jhmdb_sentences', 'jhmdb_annotation.txt')

PIPE = [
    dict(type='SampleReferClip', clip_len=8),
    dict(type='mmaction.RawFrameDecode'),
    dict(type='LoadJHMDBPuppetMask'),
]


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('cmdyseg')


@requires_shared_data(
    'jhmdb_sentences/jhmdb_annotation.txt',
    what='the real J-HMDB Sentences annotation file')
def test_real_annotation_all_rows_parse():
    rows, stats = parse_jhmdb_annotation(REAL)
    assert stats['rows'] == stats['kept'] == len(rows) == 928
    assert stats['spaces_fixed'] == 10
    assert len({r['video_id'] for r in rows}) == 928
    assert all(r['sentence'] == ' '.join(r['sentence'].split())
               for r in rows)


def test_uniform_frame_ids():
    assert uniform_frame_ids(40, 3) == [7, 21, 34]
    assert uniform_frame_ids(5, 3) == [1, 3, 5]
    assert uniform_frame_ids(4, 3) == [1, 3, 4]
    assert uniform_frame_ids(2, 3) == [1, 2]  # duplicates removed
    assert uniform_frame_ids(1, 3) == [1]
    with pytest.raises(ValueError):
        uniform_frame_ids(0, 3)


def test_index(jhmdb_root):
    ds = JHMDBSentencesDataset(data_root=jhmdb_root)
    assert ds.test_mode
    got = [(ds.get_data_info(i)['video_id'], ds.get_data_info(i)['frame_id'])
           for i in range(len(ds))]
    # clap1: 7 frames, 5 masks -> 5 usable; run2: 4 and 4
    assert got == [('clap1', 1), ('clap1', 3), ('clap1', 5), ('run2', 1),
                   ('run2', 3), ('run2', 4)]
    info = ds.get_data_info(0)
    assert info['sentence'] == 'man clapping on the left'
    assert info['total_frames'] == 5
    assert info['actor_action'] == -1 and info['instance_id'] == '0'
    assert info['frame_dir'].endswith(osp.join('Rename_Images', 'clap',
                                               'clap1'))
    assert info['mask_path'].endswith(
        osp.join('puppet_mask', 'clap', 'clap1', 'puppet_mask.mat'))
    assert ds.stats['dropped_trailing_frames'] == 2
    with pytest.raises(ValueError, match='test split'):
        JHMDBSentencesDataset(data_root=jhmdb_root, split='train')


def test_puppet_mask_readers(jhmdb_root):
    v5 = osp.join(jhmdb_root, 'puppet_mask', 'clap', 'clap1',
                  'puppet_mask.mat')
    v73 = osp.join(jhmdb_root, 'puppet_mask', 'run', 'run2',
                   'puppet_mask.mat')
    assert puppet_mask_shape(v5) == (32, 48, 5)
    assert puppet_mask_shape(v73) == (32, 48, 4)
    for path, num in ((v5, 5), (v73, 4)):
        expected = puppet(num)
        for t in range(num):
            got = load_puppet_mask(path, t)
            assert got.shape == (32, 48) and got.dtype == np.uint8
            np.testing.assert_array_equal(got, expected[..., t])
    with pytest.raises(DataFileError, match='out of range'):
        load_puppet_mask(v5, 5)


def test_clip_and_mask_pipeline(jhmdb_root):
    ds = JHMDBSentencesDataset(data_root=jhmdb_root, pipeline=PIPE)
    masks = puppet(5)
    out = ds[2]  # clap1 frame 5, the last usable one
    idx = [code_to_index(img[..., 0].mean()) for img in out['imgs']]
    # frames 6-7 have no mask: dropped, so the clip repeats frame 5
    assert idx == [0, 1, 2, 3, 4, 4, 4, 4]
    np.testing.assert_array_equal(out['gt_mask'], masks[..., 4])
    out = ds[0]  # frame 1: padded at the start
    assert [code_to_index(i[..., 0].mean())
            for i in out['imgs']] == [0, 0, 0, 0, 0, 1, 2, 3]
    np.testing.assert_array_equal(out['gt_mask'], masks[..., 0])
    assert abs(float(out['imgs'][0][..., 2].mean()) - 200) < 3  # RGB
    out = ds[4]  # run2 frame 3, v7.3 mask
    np.testing.assert_array_equal(out['gt_mask'], puppet(4)[..., 2])


def test_missing_and_corrupt(jhmdb_root):
    mat = osp.join(jhmdb_root, 'puppet_mask', 'run', 'run2',
                   'puppet_mask.mat')
    os.remove(mat)
    with pytest.raises(DataFileError, match='run2/puppet_mask.mat'):
        JHMDBSentencesDataset(data_root=jhmdb_root)
    with pytest.warns(UserWarning, match='run2'):
        ds = JHMDBSentencesDataset(data_root=jhmdb_root, on_missing='skip')
    assert len(ds) == 3 and ds.num_skipped == 1

    with open(mat, 'wb') as f:
        f.write(b'not a mat file at all' * 10)
    with pytest.raises(DataFileError, match='run2/puppet_mask.mat'):
        JHMDBSentencesDataset(data_root=jhmdb_root)

    os.rename(
        osp.join(jhmdb_root, 'Rename_Images', 'clap', 'clap1'),
        osp.join(jhmdb_root, 'clap1_moved'))
    with pytest.warns(UserWarning, match='clap1'):
        ds = JHMDBSentencesDataset(data_root=jhmdb_root, on_missing='skip')
    assert len(ds) == 0 and ds.num_skipped == 2


def test_file_broken_after_indexing_names_file_and_sample(jhmdb_root):
    ds = JHMDBSentencesDataset(data_root=jhmdb_root, pipeline=PIPE)
    # a corrupt frame of clap1 (sample 0: annotated frame 1, clip 1..4)
    png = osp.join(jhmdb_root, 'Rename_Images', 'clap', 'clap1', '00002.png')
    with open(png, 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(DataFileError) as info:
        ds[0]
    assert info.value.path == png
    assert str(info.value) == (
        f'{png}: frame image does not decode (corrupt, truncated or not an '
        "image) [JHMDBSentencesDataset: sample 0 (video 'clap1', annotated "
        'frame 1, instance 0)]')
    assert info.value.__cause__ is None
    # a corrupt puppet mask of run2 (v7.3), read at load time
    mat = osp.join(jhmdb_root, 'puppet_mask', 'run', 'run2',
                   'puppet_mask.mat')
    with open(mat, 'wb') as f:
        f.write(b'garbage' * 20)
    info = ds.get_data_info(4)
    with pytest.raises(DataFileError, match=(
            r"run2/puppet_mask\.mat: cannot read 'part_mask' .*\["
            r"JHMDBSentencesDataset: sample 4 \(video 'run2', annotated "
            rf"frame {info['frame_id']}, instance 0\)\]$")):
        ds[4]


@pytest.mark.parametrize('option,value,valid', [
    ('split', 'train', "('test',)"),
    ('on_missing', 'warn', "('error', 'skip')"),
    ('num_frames_per_video', 0, 'int >= 1'),
    ('num_frames_per_video', 2.5, 'int >= 1'),
    ('filename_tmpl', '{:s}.png', "'{:05d}.jpg'"),
    ('mask_name', '', 'file name'),
])
def test_bad_options_are_one_line_value_errors(jhmdb_root, option, value,
                                               valid):
    with pytest.raises(ValueError) as info:
        JHMDBSentencesDataset(data_root=jhmdb_root, **{option: value})
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith(f'JHMDBSentencesDataset: {option} ')
    assert valid in message and repr(value) in message


def test_missing_frame_root_is_named(jhmdb_root):
    import shutil
    shutil.rmtree(osp.join(jhmdb_root, 'Rename_Images'))
    with pytest.raises(DataFileError, match=r"Rename_Images: frame folder "
                       r"does not exist \(data_prefix\['frame'\]"):
        JHMDBSentencesDataset(data_root=jhmdb_root)
