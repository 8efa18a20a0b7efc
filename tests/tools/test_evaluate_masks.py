# Copyright (c) cmdyseg contributors. All rights reserved.
"""tools/analysis/evaluate_masks.py and tools/model_converters/
publish_model.py on a tiny generated A2D-format dataset."""
import json
import os
import os.path as osp
import stat

import numpy as np
import pytest
import torch
from load_script import load_script
from mmengine.config import Config
from pycocotools import mask as mask_utils

from cmdyseg.datasets.file_io import load_a2d_instance_mask
from cmdyseg.utils.checkpoint import CheckpointError, check_checkpoint
from cmdyseg.utils.errors import InvalidInputError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(
    ROOT, 'configs', 'cmdyconv',
    'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')


def _load_tool(rel_path, name):
    return load_script(osp.join(ROOT, *rel_path.split('/')), name)


evaluate_masks = _load_tool('tools/analysis/evaluate_masks.py',
                            'cmdyseg_tools_evaluate_masks')
publish_model = _load_tool('tools/model_converters/publish_model.py',
                           'cmdyseg_tools_publish_model')


@pytest.fixture(scope='module')
def cfg(tmp_path_factory):
    from cmdyseg.synthetic import generate_synthetic_a2d
    root = str(tmp_path_factory.mktemp('synthetic_a2d'))
    generate_synthetic_a2d(
        root, seed=1, num_train=1, num_test=4, num_frames=12, height=48,
        width=64, overwrite=True)
    cfg = Config.fromfile(CONFIG)
    cfg.test_dataloader.dataset.data_root = root
    return cfg


def _test_set(cfg):
    from mmengine.registry import init_default_scope

    from cmdyseg.registry import DATASETS
    init_default_scope('cmdyseg')
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.pipeline = []
    return DATASETS.build(ds_cfg)


def test_empty_union_and_perfect_predictions(cfg, tmp_path):
    dataset = _test_set(cfg)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    # an instance has several sentences: the key must tell them apart
    keys = {(i['video_id'], i['frame_id'], i['instance_id']) for i in infos}
    assert len(keys) < len(infos)

    empty = evaluate_masks.evaluate(cfg, 'empty', by_cue=True)
    assert empty['all']['all/mIoU'] == 0
    assert empty['all']['num_samples'] == len(infos)
    cues = {c for c in empty if c != 'all'}
    assert cues and cues <= {'none', 'position', 'motion'}
    assert sum(empty[c]['num_samples'] for c in cues) == len(infos)

    # perfect predictions, except that the sentence-level key matters: the
    # first sentence of every (frame, instance) gets an empty mask
    entries, seen, expected = [], set(), []
    for info in infos:
        gt = load_a2d_instance_mask(info['mask_path'],
                                    list(info['mask_indices']),
                                    int(info['instance_id']))
        key = (info['video_id'], info['frame_id'], info['instance_id'])
        pred = gt if key in seen else np.zeros_like(gt)
        expected.append(100.0 if key in seen else 0.0)
        seen.add(key)
        rle = mask_utils.encode(np.asfortranarray(pred))
        rle['counts'] = rle['counts'].decode('ascii')
        entries.append(
            dict(video_id=info['video_id'], frame_id=info['frame_id'],
                 instance_id=info['instance_id'],
                 sentence=info['sentence'], segmentation=rle))
    path = str(tmp_path / 'preds.json')
    with open(path, 'w') as f:
        json.dump(entries, f)
    res = evaluate_masks.evaluate(cfg, path)
    assert res['all']['all/mIoU'] == pytest.approx(np.mean(expected))

    union = evaluate_masks.evaluate(cfg, 'union')['all']
    # the union contains the referred actor: every IoU > 0, and only
    # frames with a single actor give IoU 1
    assert 0 < union['all/mIoU'] <= 100
    assert union['all/P@0.5'] >= 0


def test_by_pair_splits_the_motion_scenes_by_their_two_actions(cfg):
    from cmdyseg.synthetic import ACTIONS, load_synthetic_meta, motion_pairs
    res = evaluate_masks.evaluate(cfg, 'union', by_cue=True, by_pair=True)
    groups = [g for g in res if g.startswith('motion: ')]
    assert groups, 'the fixture has no motion scene'
    # every motion sample in exactly one pair group
    assert sum(res[g]['num_samples'] for g in groups) == \
        res['motion']['num_samples']
    for group in groups:
        actions = group[len('motion: '):].split(' / ')
        assert len(actions) >= 2 and actions == sorted(set(actions))
        assert set(actions) <= set(ACTIONS)
    assert not any(g.startswith('motion: ') for g in
                   evaluate_masks.evaluate(cfg, 'union', by_cue=True))
    # by hand from the meta: a look-alike shares colour, shape and video
    meta = load_synthetic_meta(cfg.test_dataloader.dataset.data_root)
    pairs = motion_pairs(meta)
    insts = meta['instances']
    for inst in insts:
        key = (inst['video_id'], inst['instance_id'])
        if inst['cue'] != 'motion':
            assert key not in pairs
            continue
        mates = [o for o in insts if o is not inst
                 and o['video_id'] == inst['video_id']
                 and (o['colour'], o['actor']) == (inst['colour'],
                                                   inst['actor'])]
        assert mates and all(o['action'] != inst['action'] for o in mates)
        assert pairs[key] == ' / '.join(
            sorted({inst['action']} | {o['action'] for o in mates}))


def test_cue_groups_without_a_usable_meta_file_name_it(cfg, tmp_path):
    """--by-cue / --by-pair on an A2D-format root without the generator's
    meta file, or with one of another version: a UserInputError naming
    the file (the tool prints it as one line)."""
    import copy
    import shutil

    from cmdyseg.synthetic import META_FILE
    from cmdyseg.utils.errors import InputNotFoundError
    root = str(tmp_path / 'data')
    shutil.copytree(cfg.test_dataloader.dataset.data_root, root)
    meta_path = osp.join(root, META_FILE)
    with open(meta_path) as f:
        meta = json.load(f)
    os.remove(meta_path)
    other = copy.deepcopy(cfg)  # the module's cfg stays as it is
    other.test_dataloader.dataset.data_root = root
    for flags in (dict(by_cue=True), dict(by_pair=True)):
        with pytest.raises(InputNotFoundError, match=META_FILE):
            evaluate_masks.evaluate(other, 'union', **flags)
    # without the flags the meta file is not needed
    assert evaluate_masks.evaluate(other, 'union')['all']['num_samples']
    with open(meta_path, 'w') as f:
        json.dump(dict(meta, version=-1), f)
    with pytest.raises(InvalidInputError, match='version -1'):
        evaluate_masks.evaluate(other, 'union', by_pair=True)
    with open(meta_path, 'w') as f:
        f.write('{')
    with pytest.raises(InvalidInputError, match='not a JSON file'):
        evaluate_masks.evaluate(other, 'union', by_cue=True)


def test_coverage_counts_masks_that_cover_another_actor(cfg):
    """The union covers every actor, the empty mask none, the ground truth
    (seen at the full size) the referred actor only; the test scenes have
    frames with two or more actors."""
    union = evaluate_masks.evaluate(cfg, 'union', by_cue=True,
                                    with_coverage=True)
    empty = evaluate_masks.evaluate(cfg, 'empty', with_coverage=True)
    gt = evaluate_masks.evaluate(cfg, 'gt@48x64', with_coverage=True)
    cov = union['all']['coverage']
    assert cov['samples_with_others'] > 0
    assert cov['referred'] == 100 and cov['another'] == 100
    for group in union:
        assert union[group]['coverage']['referred'] == 100
    assert empty['all']['coverage']['referred'] == 0
    assert empty['all']['coverage']['another'] == 0
    assert gt['all']['coverage']['referred'] == 100
    assert gt['all']['coverage']['another'] == 0
    assert 'coverage' not in evaluate_masks.evaluate(cfg, 'empty')['all']
    # one frame by hand: the referred actor's mask plus part of another's
    dataset = _test_set(cfg)
    from cmdyseg.datasets.file_io import read_a2d_masks
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        ids, masks = read_a2d_masks(info['mask_path'])
        if len(ids) > 1:
            break
    ref = list(ids).index(int(info['instance_id']))
    other = masks[(ref + 1) % len(ids)] > 0
    half = other.copy()
    rows = np.nonzero(other.any(1))[0]
    half[rows[:len(rows) // 3]] = False  # about two thirds of it
    mask = ((masks[ref] > 0) | half).astype(np.uint8)
    got = evaluate_masks.coverage(mask, info)
    assert got[0] is True
    assert got[1] is bool(half.sum() * 2 >= other.sum())
    assert evaluate_masks.coverage(
        (masks[ref] > 0).astype(np.uint8), info) == (True, False)


def test_gt_through_a_response_map_by_hand(cfg):
    # a 4 x 4 square in an 8 x 8 frame seen through 2 x 2: each cell holds
    # a quarter of it; upsampled, the half-max keeps a centred blob
    gt = np.zeros((8, 8), np.uint8)
    gt[1:5, 1:5] = 1
    small = np.array([[9, 3], [3, 1]]) / 16.
    import torch
    import torch.nn.functional as F
    up = F.interpolate(torch.tensor(small, dtype=torch.float32)[None, None],
                       size=(8, 8), mode='bilinear',
                       align_corners=False)[0, 0].numpy()
    want = (up > up.max() / 2).astype(np.uint8)
    got = evaluate_masks.gt_through_response(gt, (2, 2))
    np.testing.assert_array_equal(got, want)
    # at the frame's own size it is the ground truth
    np.testing.assert_array_equal(
        evaluate_masks.gt_through_response(gt, (8, 8)), gt)
    assert evaluate_masks.gt_through_response(
        np.zeros_like(gt), (2, 2)).sum() == 0
    # through the whole dataset: the finer, the closer to perfect
    coarse = evaluate_masks.evaluate(cfg, 'gt@6x8')['all']['all/mIoU']
    fine = evaluate_masks.evaluate(cfg, 'gt@24x32')['all']['all/mIoU']
    assert coarse < fine < 100
    with pytest.raises(InvalidInputError, match='gt@0x8'):
        evaluate_masks.evaluate(cfg, 'gt@0x8')


def test_missing_prediction_names_the_sample(cfg, tmp_path):
    path = str(tmp_path / 'preds.json')
    with open(path, 'w') as f:
        json.dump([], f)
    with pytest.raises(KeyError, match='no prediction for sample'):
        evaluate_masks.evaluate(cfg, path)


def test_publish_names_file_by_hash_and_drops_optimizer(tmp_path):
    src = str(tmp_path / 'epoch_1.pth')
    torch.save(
        dict(
            state_dict=dict(w=torch.ones(2)),
            optimizer=dict(state={}),
            meta=dict(epoch=1, iter=5, hook_msgs={})), src)
    final = publish_model.publish(src, str(tmp_path / 'out' / 'model'))
    assert osp.basename(final).startswith('model-')
    assert check_checkpoint(final) == final
    ckpt = torch.load(final, map_location='cpu')
    assert set(ckpt) == {'state_dict', 'meta'}
    assert ckpt['meta'] == dict(epoch=1, iter=5)
    # shareable like any file the user writes, not private like a temp file
    umask = os.umask(0o022)
    try:
        final2 = publish_model.publish(src, str(tmp_path / 'out2' / 'model'))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(final2).st_mode) == 0o644
    # the same checkpoint gives the same bytes, hence the same name
    assert osp.basename(final2) == osp.basename(final)
    # a corrupted copy under the same name is refused
    with open(final, 'ab') as f:
        f.write(b'x')
    with pytest.raises(CheckpointError, match='corrupt'):
        check_checkpoint(final)
