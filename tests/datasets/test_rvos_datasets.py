# Copyright (c) cmdyseg contributors. All rights reserved.
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from rvos_fixtures import (DAVIS_TEXT, YTVOS_TRAIN, build_davis, build_mevis,
                           build_ytvos, frame_indices, write_davis_text,
                           write_json, write_rgb_png)

from cmdyseg.datasets import (DataFileError, MeViSDataset, RefDAVIS17Dataset,
                              RefYouTubeVOSDataset)
from cmdyseg.datasets.transforms import (LoadListedFrames, LoadReferObjectMask,
                                         LoadVideoObjectMasks, expression_gt)
from cmdyseg.registry import DATASETS, TRANSFORMS
from cmdyseg.utils.errors import InvalidInputError

FRAME_PIPE = [dict(type='LoadListedFrames'), dict(type='LoadReferObjectMask')]
VIDEO_PIPE = [dict(type='LoadListedFrames'), dict(type='LoadVideoObjectMasks')]

FRAME_KEYS = {
    'video_id', 'exp_id', 'sentence', 'instance_id', 'obj_ids', 'mask_ids',
    'frame_id', 'total_frames', 'frame_dir', 'frame_names', 'actor_action',
    'category', 'anno_set', 'modality', 'mask_path', 'sample_idx'
}
VIDEO_KEYS = {
    'video_id', 'frame_dir', 'frame_names', 'total_frames', 'modality',
    'expressions', 'has_gt', 'sample_idx'
}


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('cmdyseg')


@pytest.fixture
def ytvos(tmp_path):
    return build_ytvos(tmp_path / 'ytvos')


@pytest.fixture
def davis(tmp_path):
    return build_davis(tmp_path / 'davis')


@pytest.fixture
def mevis(tmp_path):
    return build_mevis(tmp_path / 'mevis')


def infos(ds):
    return [ds.get_data_info(i) for i in range(len(ds))]


def find(ds, **match):
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        if all(info[k] == v for k, v in match.items()):
            return i, info
    raise AssertionError(f'no sample {match}')


def video_gt(ds, idx):
    """(results of the video pipeline, {exp_id: expression_gt})."""
    results = ds[idx]
    shape = results['ori_shape']
    num = len(results['frame_names'])
    return results, {
        e['exp_id']:
        expression_gt(results['gt_object_rles'], e['mask_ids'], num, shape)
        for e in results['expressions']
    }


# ------------------------------------------------------------ Ref-YouTube-VOS
def test_ytvos_train_frame_samples(ytvos):
    ds = RefYouTubeVOSDataset(ytvos.root, split='train', pipeline=FRAME_PIPE)
    assert ds.sample_mode == 'frame' and ds.has_gt
    keys = [(d['video_id'], d['exp_id'], d['frame_id']) for d in infos(ds)]
    assert keys == [('vidA', '0', 1), ('vidA', '0', 2), ('vidA', '0', 3),
                    ('vidA', '1', 1), ('vidA', '1', 2), ('vidA', '1', 3),
                    ('vidB', '0', 1), ('vidB', '0', 2)]
    assert ds.stats['empty_mask_samples'] == 1  # vidA object 2 in 00010
    assert ds.stats['videos'] == 2 and ds.stats['expressions'] == 3
    assert ds.stats['spaces_fixed'] == 1
    # the serialized list holds only the small per-sample fields
    assert set(pickle.loads(ds.data_bytes[:ds.data_address[0]].tobytes())) \
        == {'video_id', 'exp_id', 'frame_id'}

    _, info = find(ds, video_id='vidA', exp_id='0', frame_id=2)
    assert set(info) == FRAME_KEYS | {'missing_mask'}
    assert info['sentence'] == 'a penguin on the left'
    assert info['instance_id'] == '1' and info['obj_ids'] == [1]
    assert info['category'] == 'penguin' and info['anno_set'] is None
    assert info['frame_names'] == ['00000.jpg', '00005.jpg', '00010.jpg']
    assert info['total_frames'] == 3 and info['actor_action'] == -1
    assert info['frame_dir'] == osp.join(ytvos.root, 'train', 'JPEGImages',
                                         'vidA')
    assert info['mask_path'] == osp.join(ytvos.root, 'train', 'Annotations',
                                         'vidA', '00005.png')

    for i in range(len(ds)):
        out = ds[i]
        vid, t = out['video_id'], out['frame_id'] - 1
        expected = np.isin(ytvos.labels[vid, t], out['obj_ids'])
        np.testing.assert_array_equal(out['gt_mask'], expected)
        np.testing.assert_array_equal(out['ori_gt_mask'], expected)
        assert out['gt_mask'].dtype == np.uint8
        assert frame_indices(out['imgs']) == list(
            range(len(YTVOS_TRAIN[vid][0])))
        assert out['original_shape'] == (24, 32)
    # the absent object: an empty mask, but a sample
    i, _ = find(ds, video_id='vidA', exp_id='1', frame_id=3)
    assert ds[i]['gt_mask'].sum() == 0
    # object 1 is partly covered by object 2: its mask is what the PNG says
    i, _ = find(ds, video_id='vidA', exp_id='0', frame_id=1)
    assert 0 < ds[i]['gt_mask'].sum() < (ytvos.labels['vidA', 0] > 0).sum()


def test_ytvos_clip_edge_padding(ytvos):
    ds = RefYouTubeVOSDataset(
        ytvos.root,
        split='train',
        pipeline=[
            dict(type='SampleReferClip', clip_len=4),
            dict(type='LoadListedFrames'),
            dict(type='LoadReferObjectMask')
        ])
    i, _ = find(ds, video_id='vidA', exp_id='0', frame_id=1)
    out = ds[i]
    assert len(out['imgs']) == 4
    assert out['frame_inds'].tolist() == [0, 0, 0, 1]
    assert frame_indices(out['imgs']) == [0, 0, 0, 1]
    # repeats are copies (in-place flips must not hit one array twice)
    assert len({id(img) for img in out['imgs']}) == 4
    np.testing.assert_array_equal(out['gt_mask'], ytvos.labels['vidA', 0] == 1)
    i, _ = find(ds, video_id='vidA', exp_id='1', frame_id=3)
    out = ds[i]
    assert frame_indices(out['imgs']) == [0, 1, 2, 2]


def test_ytvos_video_mode(ytvos):
    ds = RefYouTubeVOSDataset(
        ytvos.root, split='train', test_mode=True, pipeline=VIDEO_PIPE)
    assert ds.sample_mode == 'video' and len(ds) == 2
    info = ds.get_data_info(0)
    assert set(info) == VIDEO_KEYS | {'mask_paths'}
    assert info['has_gt'] is True and info['total_frames'] == 3
    assert info['expressions'] == [
        dict(
            exp_id='0',
            sentence='a penguin on the left',
            obj_ids=[1],
            mask_ids=['1'],
            category='penguin',
            anno_set=None),
        dict(
            exp_id='1',
            sentence='the black dog',
            obj_ids=[2],
            mask_ids=['2'],
            category='dog',
            anno_set=None),
    ]
    assert info['mask_paths'] == [
        osp.join(ytvos.root, 'train', 'Annotations', 'vidA', s + '.png')
        for s in ('00000', '00005', '00010')
    ]
    results, gts = video_gt(ds, 0)
    assert results['ori_shape'] == (24, 32)
    assert sorted(results['gt_object_rles']) == ['1', '2']
    for rles in results['gt_object_rles'].values():
        assert len(rles) == 3
        assert all(isinstance(r['counts'], bytes) for r in rles)
    np.testing.assert_array_equal(gts['0'], ytvos.object_masks('vidA', [1]))
    np.testing.assert_array_equal(gts['1'], ytvos.object_masks('vidA', [2]))
    assert gts['1'][2].sum() == 0 and gts['1'][:2].sum() > 0
    assert expression_gt(results['gt_object_rles'], [], 3,
                         (24, 32)).shape == (3, 24, 32)
    assert expression_gt(results['gt_object_rles'], [], 3, (24, 32)).sum() \
        == 0


def test_ytvos_valid_split(ytvos):
    ds = RefYouTubeVOSDataset(
        ytvos.root, split='valid', sample_mode='video', pipeline=VIDEO_PIPE)
    assert [d['video_id'] for d in infos(ds)] == ['vidV1', 'vidV2']
    assert ds.stats['excluded_videos'] == 1 and not ds.has_gt
    info = ds.get_data_info(0)
    assert set(info) == VIDEO_KEYS and info['has_gt'] is False
    assert [(e['exp_id'], e['sentence'], e['obj_ids'], e['mask_ids'])
            for e in info['expressions']] == [('0', 'a red car', [], []),
                                              ('1', 'a person walking', [], [])
                                              ]
    out = ds[1]
    assert out['gt_object_rles'] is None and len(out['imgs']) == 3
    with pytest.raises(InvalidInputError, match='has no masks'):
        RefYouTubeVOSDataset(ytvos.root, split='valid')
    kept = RefYouTubeVOSDataset(
        ytvos.root, split='valid', test_mode=True, exclude_file=None)
    assert len(kept) == 3


def test_ytvos_valid_needs_test_meta(tmp_path):
    fx = build_ytvos(tmp_path / 'y', test_meta=False)
    with pytest.raises(InvalidInputError) as err:
        RefYouTubeVOSDataset(fx.root, split='valid', test_mode=True)
    msg = str(err.value)
    assert osp.join(fx.root, 'meta_expressions', 'test',
                    'meta_expressions.json') in msg
    assert '202' in msg and 'exclude_file=None' in msg
    assert '\n' not in msg


def test_ytvos_build_from_registry(ytvos):
    ds = DATASETS.build(
        dict(
            type='RefYouTubeVOSDataset',
            data_root=ytvos.root,
            split='train',
            pipeline=FRAME_PIPE))
    assert isinstance(ds, RefYouTubeVOSDataset) and len(ds) == 8
    assert ds[0]['gt_mask'].shape == (24, 32)
    assert isinstance(
        TRANSFORMS.build(dict(type='LoadListedFrames')), LoadListedFrames)
    # the dataset crosses process boundaries (DataLoader workers)
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.get_data_info(5)['sentence'] == 'the black dog'


def test_ytvos_corrupt_meta(ytvos):
    path = osp.join(ytvos.root, 'meta_expressions', 'train',
                    'meta_expressions.json')
    with open(path, 'w') as f:
        f.write('{"videos": {"vidA": ')
    with pytest.raises(DataFileError) as err:
        RefYouTubeVOSDataset(ytvos.root, split='train')
    assert str(err.value).startswith(path + ': not valid JSON')


@pytest.mark.parametrize('exp, message', [
    (dict(expression='x',
          obj_id='1'), "videos -> 'vidA' -> expressions -> '0': no 'exp'"),
    (dict(exp='x', obj_id='one'),
     "videos -> 'vidA' -> expressions -> '0' -> obj_id: 'one' is not an "
     'integer'),
    (dict(exp='x'), "videos -> 'vidA' -> expressions -> '0': no 'obj_id'"),
])
def test_ytvos_schema_errors(ytvos, exp, message):
    path = osp.join(ytvos.root, 'meta_expressions', 'train',
                    'meta_expressions.json')
    write_json(
        path,
        dict(videos=dict(vidA=dict(expressions={'0': exp}, frames=['00000']))))
    with pytest.raises(DataFileError) as err:
        RefYouTubeVOSDataset(ytvos.root, split='train')
    assert str(err.value).startswith(path + ': ' + message)


def test_ytvos_missing_frame_skip_or_error(ytvos):
    gone = osp.join(ytvos.root, 'train', 'JPEGImages', 'vidB', '00005.jpg')
    os.remove(gone)
    with pytest.raises(DataFileError) as err:
        RefYouTubeVOSDataset(ytvos.root, split='train')
    assert gone in str(err.value) and "video 'vidB'" in str(err.value)
    with pytest.warns(UserWarning, match='vidB'):
        ds = RefYouTubeVOSDataset(ytvos.root, split='train', on_missing='skip')
    assert len(ds) == 6 and ds.num_skipped == 1
    assert ds.skipped[0][0] == gone


def test_ytvos_missing_png(ytvos):
    gone = osp.join(ytvos.root, 'train', 'Annotations', 'vidB', '00000.png')
    os.remove(gone)
    with pytest.raises(DataFileError, match='missing_mask'):
        RefYouTubeVOSDataset(ytvos.root, split='train')
    ds = RefYouTubeVOSDataset(
        ytvos.root, split='train', missing_mask='empty', pipeline=FRAME_PIPE)
    assert ds.stats['frames_without_mask'] == 1
    i, info = find(ds, video_id='vidB', frame_id=1)
    assert info['mask_path'] == gone
    out = ds[i]
    np.testing.assert_array_equal(out['gt_mask'], np.zeros((24, 32)))
    video = RefYouTubeVOSDataset(
        ytvos.root,
        split='train',
        missing_mask='empty',
        test_mode=True,
        pipeline=VIDEO_PIPE)
    assert video.get_data_info(1)['mask_paths'][0] is None
    results, gts = video_gt(video, 1)
    expected = ytvos.object_masks('vidB', [1])
    expected[0] = 0
    np.testing.assert_array_equal(gts['0'], expected)


def test_ytvos_rgb_annotation(ytvos):
    path = osp.join(ytvos.root, 'train', 'Annotations', 'vidA', '00005.png')
    write_rgb_png(path, ytvos.labels['vidA', 1])
    ds = RefYouTubeVOSDataset(ytvos.root, split='train', pipeline=FRAME_PIPE)
    i, _ = find(ds, video_id='vidA', exp_id='0', frame_id=2)
    with pytest.raises(DataFileError) as err:
        ds[i]
    assert path in str(err.value) and 'palette' in str(err.value)
    video = RefYouTubeVOSDataset(
        ytvos.root, split='train', test_mode=True, pipeline=VIDEO_PIPE)
    with pytest.raises(DataFileError, match='palette') as err:
        video[0]
    assert path in str(err.value)


def test_sample_mode_checked(ytvos):
    with pytest.raises(InvalidInputError, match="sample_mode must be"):
        RefYouTubeVOSDataset(ytvos.root, split='train', sample_mode='clip')
    with pytest.raises(InvalidInputError, match='split must be'):
        RefYouTubeVOSDataset(ytvos.root, split='val')


# ---------------------------------------------------------------- Ref-DAVIS17
def test_davis_val_frame_samples(davis):
    ds = RefDAVIS17Dataset(davis.root, split='val', pipeline=FRAME_PIPE)
    # bear: 2 objects x 4 sets x 4 frames; dogs-scale: 3 sets x 3 frames
    assert len(ds) == 32 + 9
    exps = sorted({(d['video_id'], d['exp_id'], d['anno_set'], d['sentence'])
                   for d in infos(ds)})
    assert exps == [
        ('bear', '0', 'annot1', 'a brown bear'),
        ('bear', '1', 'annot1_full_video', 'a bear walking'),
        ('bear', '2', 'annot2', 'a bear near a café'),
        ('bear', '3', 'annot2_full_video', 'the bear that walks'),
        ('bear', '4', 'annot1', 'the small bear'),
        ('bear', '5', 'annot1_full_video', 'a cub following'),
        ('bear', '6', 'annot2', 'the other bear'),
        ('bear', '7', 'annot2_full_video', 'the bear behind'),
        ('dogs-scale', '0', 'annot1', 'a dog'),
        ('dogs-scale', '1', 'annot1_full_video', 'a dog on a scale'),
        ('dogs-scale', '2', 'annot2', 'the dog'),
    ]
    assert ds.stats['aliased'] == 3  # 'dog-scale' -> 'dogs-scale'
    assert ds.stats['other_split_lines'] == 1  # trainvid
    _, info = find(ds, video_id='bear', exp_id='6', frame_id=3)
    assert info['frame_names'] == [f'{t:05d}.jpg' for t in range(4)]
    assert info['category'] is None and info['instance_id'] == '2'
    assert info['mask_path'] == osp.join(davis.root, 'Annotations', '480p',
                                         'bear', '00002.png')
    for i in range(len(ds)):
        out = ds[i]
        expected = np.isin(davis.labels[out['video_id'], out['frame_id'] - 1],
                           out['obj_ids'])
        np.testing.assert_array_equal(out['gt_mask'], expected)
    i, _ = find(ds, video_id='bear', exp_id='4', frame_id=3)
    assert ds[i]['gt_mask'].sum() == 0  # object 2 absent from frame 2


def test_davis_sets_and_train_split(davis):
    ds = RefDAVIS17Dataset(davis.root, split='train', anno_sets=('annot1', ))
    assert [(d['video_id'], d['exp_id'], d['sentence']) for d in infos(ds)] \
        == [('trainvid', '0', 'a train thing')] * 2
    two = RefDAVIS17Dataset(
        davis.root,
        split='val',
        anno_sets=['annot2_full_video'],
        test_mode=True)
    assert [e['exp_id']
            for e in two.get_data_info(0)['expressions']] == ['3', '7']
    with pytest.raises(InvalidInputError, match='anno_sets'):
        RefDAVIS17Dataset(davis.root, anno_sets=('annot3', ))


def test_davis_video_mode(davis):
    ds = RefDAVIS17Dataset(
        davis.root, split='val', test_mode=True, pipeline=VIDEO_PIPE)
    assert [d['video_id'] for d in infos(ds)] == ['bear', 'dogs-scale']
    info = ds.get_data_info(0)
    got = [(e['exp_id'], e['obj_ids'], e['mask_ids'], e['anno_set'])
           for e in info['expressions']]
    assert got == [
        ('0', [1], ['1'], 'annot1'),
        ('1', [1], ['1'], 'annot1_full_video'),
        ('2', [1], ['1'], 'annot2'),
        ('3', [1], ['1'], 'annot2_full_video'),
        ('4', [2], ['2'], 'annot1'),
        ('5', [2], ['2'], 'annot1_full_video'),
        ('6', [2], ['2'], 'annot2'),
        ('7', [2], ['2'], 'annot2_full_video'),
    ]
    results, gts = video_gt(ds, 0)
    assert len(results['imgs']) == 4
    np.testing.assert_array_equal(gts['0'], davis.object_masks('bear', [1]))
    np.testing.assert_array_equal(gts['7'], davis.object_masks('bear', [2]))
    assert gts['7'][2].sum() == 0


def test_davis_malformed_line(davis):
    path = osp.join(davis.root, 'davis_text_annotations',
                    'Davis17_annot1_full_video.txt')
    write_davis_text(path, 'utf-8',
                     ['bear 1 "a bear walking"', 'bear two "oops"'])
    with pytest.raises(InvalidInputError) as err:
        RefDAVIS17Dataset(davis.root, split='val')
    assert str(err.value).startswith(f'{path}:2: expected')


def test_davis_encodings(davis):
    # annot2 really is latin-1: 'é' is one byte 0xE9 in the file
    path2 = osp.join(davis.root, 'davis_text_annotations',
                     'Davis17_annot2.txt')
    with open(path2, 'rb') as f:
        assert b'caf\xe9' in f.read()
    # an annot1 file (UTF-8) holding latin-1 bytes: the line is named
    path1 = osp.join(davis.root, 'davis_text_annotations',
                     'Davis17_annot1.txt')
    write_davis_text(path1, 'latin-1',
                     DAVIS_TEXT['annot1'][1] + ['bear 3 "déjà vu"'])
    with pytest.raises(InvalidInputError) as err:
        RefDAVIS17Dataset(davis.root, split='val')
    assert str(err.value).startswith(f'{path1}:6: not utf-8')


def test_davis_missing_text_file(davis):
    path = osp.join(davis.root, 'davis_text_annotations', 'Davis17_annot2.txt')
    os.remove(path)
    with pytest.raises(DataFileError) as err:
        RefDAVIS17Dataset(davis.root, split='val')
    assert str(err.value).startswith(path + ': ')
    ds = RefDAVIS17Dataset(
        davis.root, split='val', anno_sets=('annot1', 'annot1_full_video'))
    assert len(ds) == 2 * 2 * 4 + 2 * 3


# ---------------------------------------------------------------------- MeViS
def test_mevis_frame_samples(mevis):
    ds = MeViSDataset(mevis.root, split='train', pipeline=FRAME_PIPE)
    assert len(ds) == 2 * 4 + 3
    assert ds.stats['empty_mask_samples'] == 1  # m1 '0' frame 2
    assert ds.stats['multi_object_expressions'] == 1
    _, info = find(ds, video_id='m1', exp_id='1', frame_id=1)
    assert set(info) == FRAME_KEYS | {'mask_rles'}
    assert info['sentence'] == 'two cats playing'
    assert info['obj_ids'] == [0, 1] and info['instance_id'] == '0+1'
    assert info['mask_ids'] == ['10', '11']
    assert info['mask_rles'][1] is None  # anno 11 absent from frame 0
    assert isinstance(info['mask_rles'][0]['counts'], str)
    assert info['mask_path'] == osp.join(mevis.root, 'train', 'mask_dict.json')
    for i in range(len(ds)):
        out = ds[i]
        anno = [int(a) for a in out['mask_ids']]
        expected = mevis.anno_masks(out['video_id'], anno)[out['frame_id'] - 1]
        np.testing.assert_array_equal(out['gt_mask'], expected)
    i, _ = find(ds, video_id='m1', exp_id='0', frame_id=3)
    assert ds[i]['gt_mask'].sum() == 0
    # the union really is one: frame 1 has both cats
    i, _ = find(ds, video_id='m1', exp_id='1', frame_id=2)
    m10, m11 = mevis.masks[10, 1], mevis.masks[11, 1]
    np.testing.assert_array_equal(ds[i]['gt_mask'], m10 | m11)
    assert (m10 | m11).sum() > max(m10.sum(), m11.sum())


def test_mevis_video_mode(mevis):
    ds = MeViSDataset(
        mevis.root, split='train', test_mode=True, pipeline=VIDEO_PIPE)
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert set(info) == VIDEO_KEYS | {'object_rles', 'mask_path'}
    assert sorted(info['object_rles']) == ['10', '11']  # not 99
    assert [(e['exp_id'], e['obj_ids'], e['mask_ids'])
            for e in info['expressions']] == [('0', [0], ['10']),
                                              ('1', [0, 1], ['10', '11'])]
    results, gts = video_gt(ds, 0)
    rles = results['gt_object_rles']
    assert all(isinstance(r['counts'], bytes) for r in rles['10'] + rles['11'])
    np.testing.assert_array_equal(gts['0'], mevis.anno_masks('m1', [10]))
    np.testing.assert_array_equal(gts['1'], mevis.anno_masks('m1', [10, 11]))
    assert gts['0'][2].sum() == 0 and gts['1'][2].sum() > 0
    _, gts = video_gt(ds, 1)
    np.testing.assert_array_equal(gts['0'], mevis.anno_masks('m2', [20]))


def test_mevis_valid_has_no_gt(mevis):
    ds = MeViSDataset(
        mevis.root, split='valid', test_mode=True, pipeline=VIDEO_PIPE)
    assert not ds.has_gt and len(ds) == 2
    info = ds.get_data_info(0)
    assert set(info) == VIDEO_KEYS and not info['has_gt']
    assert ds[0]['gt_object_rles'] is None
    with pytest.raises(InvalidInputError, match='has no masks'):
        MeViSDataset(mevis.root, split='valid')
    with pytest.raises(DataFileError, match='mask_dict.json'):
        MeViSDataset(mevis.root, split='valid_u', test_mode=True)


def _edit_mask_dict(root, edit):
    path = osp.join(root, 'train', 'mask_dict.json')
    with open(path) as f:
        masks = json.load(f)
    edit(masks)
    write_json(path, masks)
    return path


def test_mevis_mask_dict_errors(mevis):
    path = _edit_mask_dict(mevis.root, lambda m: m.pop('11'))
    with pytest.raises(DataFileError) as err:
        MeViSDataset(mevis.root, split='train')
    assert str(err.value).startswith(f"{path}: no anno_id '11'")
    assert "video 'm1'" in str(err.value)

    def shorten(m):
        m['11'] = m.get('11', [None] * 4)[:3]

    fx = build_mevis(osp.join(mevis.root, '..', 'again'))
    path = _edit_mask_dict(fx.root, shorten)
    with pytest.raises(DataFileError) as err:
        MeViSDataset(fx.root, split='train')
    assert str(err.value).startswith(
        f"{path}: anno_id '11' has 3 masks but video 'm1' lists 4 frames")


def test_mevis_rle_size_mismatch(mevis):

    def resize(m):
        m['20'][1]['size'] = [12, 32]

    path = _edit_mask_dict(mevis.root, resize)
    ds = MeViSDataset(mevis.root, split='train', pipeline=FRAME_PIPE)
    i, _ = find(ds, video_id='m2', frame_id=2)
    with pytest.raises(DataFileError) as err:
        ds[i]
    msg = str(err.value)
    assert msg.startswith(path + ": anno_id '20' frame 1 (00001.jpg)")
    assert '12x32' in msg and '24x32' in msg
    video = MeViSDataset(
        mevis.root, split='train', test_mode=True, pipeline=VIDEO_PIPE)
    with pytest.raises(DataFileError) as err:
        video[1]
    assert str(err.value).startswith(path + ": anno_id '20' frame 1")


def test_mevis_corrupt_meta(mevis):
    path = osp.join(mevis.root, 'train', 'meta_expressions.json')
    write_json(path, dict(videos=dict(m1=dict(expressions=[], frames=[]))))
    with pytest.raises(DataFileError) as err:
        MeViSDataset(mevis.root, split='train')
    assert str(err.value).startswith(path + ": videos -> 'm1' -> frames")


# ------------------------------------------------------------- transforms
def test_load_listed_frames_errors(ytvos):
    frame_dir = osp.join(ytvos.root, 'train', 'JPEGImages', 'vidA')
    bad = osp.join(frame_dir, '00005.jpg')
    with open(bad, 'wb') as f:
        f.write(b'not a jpeg')
    results = dict(
        frame_dir=frame_dir,
        frame_names=['00000.jpg', '00005.jpg', 'gone.jpg'],
        frame_inds=np.array([0, 0]))
    out = LoadListedFrames()(dict(results))
    assert frame_indices(out['imgs']) == [0, 0]
    with pytest.raises(DataFileError) as err:
        LoadListedFrames()(dict(results, frame_inds=np.array([0, 1])))
    assert str(err.value).startswith(bad + ': frame image does not decode')
    with pytest.raises(DataFileError) as err:
        LoadListedFrames()(dict(results, frame_inds=np.array([2])))
    assert str(err.value).startswith(
        osp.join(frame_dir, 'gone.jpg') + ': frame file does not exist')


def test_load_refer_object_mask_from_rles_without_frames(mevis):
    # without LoadListedFrames before it, the frame size comes from the file
    ds = MeViSDataset(mevis.root, split='train')
    i, info = find(ds, video_id='m1', exp_id='0', frame_id=3)
    out = LoadReferObjectMask()(info)
    assert out['gt_mask'].shape == (24, 32) and out['gt_mask'].sum() == 0
    out = LoadVideoObjectMasks()(
        MeViSDataset(mevis.root, split='train',
                     test_mode=True).get_data_info(0))
    assert out['ori_shape'] == (24, 32)
