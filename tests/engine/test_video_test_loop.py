# Copyright (c) cmdyseg contributors. All rights reserved.
"""Video-level testing end to end: tools/test.py on a tiny synthetic
Ref-YouTube-VOS copy with ReferVideoTestLoop, J&F and the submission files
(--out, --format-only); ReferVOSSubmission and JFMetric on their own."""
import hashlib
import io
import json
import os
import os.path as osp
import shutil
import zipfile

import cv2
import numpy as np
import pytest
import torch
from load_script import load_script
from PIL import Image
from pycocotools import mask as mask_utils

from cmdyseg.datasets.transforms import clip_indices
from cmdyseg.engine import encode_masks
from cmdyseg.evaluation import JFMetric, ReferVOSSubmission

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(
    ROOT, 'configs', 'cmdyconv',
    'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64_test-'
    'synthetic-ytvos.py')
NUM_FRAMES, HEIGHT, WIDTH = 8, 32, 48
CLIP_LEN, INPUT = 8, (64, 64)
# logit > 0 instead of half-max: a random model's masks then have a shape,
# so that comparing them with the expected ones means something
TEST_CFG = dict(mode='absolute', thr=0.5)


def cfg_options(data_root):
    return [
        '--cfg-options', f'test_dataloader.dataset.data_root={data_root}',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'model.test_cfg.mode=absolute', 'model.test_cfg.thr=0.5'
    ]


@pytest.fixture(scope='module')
def test_script():
    return load_script(osp.join(ROOT, 'tools', 'test.py'),
                       'cmdyseg_tools_test_video')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """The data, a checkpoint of a random model, and the masks that model
    must give (computed here from the JPEGs with segment_frames)."""
    from cmdyseg.apis import init_model, segment_frames
    from cmdyseg.synthetic import generate_synthetic_ytvos
    tmp = tmp_path_factory.mktemp('video_loop')
    data = str(tmp / 'data')
    generate_synthetic_ytvos(data, seed=0, num_train=0, num_test=2,
                             num_frames=NUM_FRAMES, height=HEIGHT,
                             width=WIDTH, num_missed=0)
    torch.manual_seed(0)
    model = init_model(CONFIG, cfg_options={'model.test_cfg': TEST_CFG})
    ckpt = str(tmp / 'random.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    with open(osp.join(data, 'meta_expressions', 'valid',
                       'meta_expressions.json')) as f:
        videos = json.load(f)['videos']
    with open(osp.join(data, 'valid', 'meta.json')) as f:
        objects = json.load(f)['videos']
    expected = {}  # (vid, exp_id) -> (T, H, W) uint8 predicted masks
    gt = {}  # (vid, exp_id) -> (T, H, W) bool ground truth
    categories = {}
    for vid, video in videos.items():
        names = video['frames']
        frames = []
        for name in names:
            bgr = cv2.imread(osp.join(data, 'valid', 'JPEGImages', vid,
                                      name + '.jpg'))
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            frames.append(cv2.resize(rgb, INPUT,
                                     interpolation=cv2.INTER_LINEAR))
        frames = np.stack(frames)
        labels = np.stack([
            np.array(Image.open(osp.join(data, 'valid', 'Annotations', vid,
                                         name + '.png'))) for name in names
        ])
        exp_ids = list(video['expressions'])
        sentences = [video['expressions'][e]['exp'] for e in exp_ids]
        # the config's test_cfg: batch_size 8, all 4 sentences in one pass
        results = segment_frames(
            model, frames, (HEIGHT, WIDTH),
            [' '.join(s.split()) for s in sentences],
            clip_indices(np.arange(len(names)), len(names), CLIP_LEN),
            batch_size=8)
        for exp_id, result in zip(exp_ids, results):
            obj_id = video['expressions'][exp_id]['obj_id']
            expected[vid, exp_id] = result['masks']
            gt[vid, exp_id] = labels == int(obj_id)
            categories[vid, exp_id] = objects[vid]['objects'][obj_id][
                'category']
    return dict(tmp=tmp, data=data, ckpt=ckpt, videos=videos,
                expected=expected, gt=gt, categories=categories)


def expected_names(videos):
    return sorted(f'Annotations/{vid}/{exp_id}/{frame}.png'
                  for vid, video in videos.items()
                  for exp_id in video['expressions']
                  for frame in video['frames'])


def check_submission(out_dir, videos, expected):
    """The zip holds exactly the expected PNGs (mode 'L', 0/255, the
    expected masks) and out_dir/Annotations the same files."""
    names = expected_names(videos)
    with zipfile.ZipFile(osp.join(out_dir, 'submission.zip')) as zf:
        assert sorted(zf.namelist()) == names
        for name in names:
            data = zf.read(name)
            png = Image.open(io.BytesIO(data))
            assert png.mode == 'L', name
            arr = np.array(png)
            assert set(np.unique(arr)) <= {0, 255}, name
            _, vid, exp_id, frame = name[:-4].split('/')
            t = videos[vid]['frames'].index(frame)
            np.testing.assert_array_equal(
                arr, expected[vid, exp_id][t] * 255, err_msg=name)
            with open(osp.join(out_dir, name), 'rb') as f:
                assert f.read() == data, name
    on_disk = sorted(
        osp.relpath(osp.join(d, n), out_dir).replace(os.sep, '/')
        for d, _, files in os.walk(osp.join(out_dir, 'Annotations'))
        for n in files)
    assert on_disk == names
    # nothing else: no staging or temporary folder left
    assert sorted(os.listdir(out_dir)) == ['Annotations', 'submission.zip']


def hand_j(pred, gt):
    """Mean over frames of |P & G| / |P | G| (1 for two empty masks)."""
    values = []
    for p, g in zip(pred.astype(bool), gt):
        union = np.count_nonzero(p | g)
        values.append(1.0 if union == 0 else np.count_nonzero(p & g) / union)
    return float(np.mean(values))


def test_tools_test_scores_and_writes_the_submission(setup, test_script):
    out = str(setup['tmp'] / 'sub')
    metrics = test_script.main([
        CONFIG, setup['ckpt'], '--work-dir',
        str(setup['tmp'] / 'work'), '--out', out
    ] + cfg_options(setup['data']))
    videos, expected = setup['videos'], setup['expected']
    num_exps = sum(len(v['expressions']) for v in videos.values())
    num_frames = sum(
        len(v['expressions']) * len(v['frames']) for v in videos.values())
    assert (num_exps, num_frames) == (8, 64)
    assert metrics['submission/videos'] == len(videos) == 2
    assert metrics['submission/expressions'] == num_exps
    assert metrics['submission/frames'] == num_frames
    for key in ('jf/J', 'jf/F', 'jf/J&F'):
        assert 0 <= metrics[key] <= 100, (key, metrics[key])
    assert metrics['jf/J&F'] == pytest.approx(
        (metrics['jf/J'] + metrics['jf/F']) / 2)
    # J by hand from the expected masks and the PNG label maps
    js = {k: hand_j(expected[k], setup['gt'][k]) for k in expected}
    assert metrics['jf/J'] == pytest.approx(
        100 * np.mean(list(js.values())), abs=1e-9)
    by_cat = {}
    for key, j in js.items():
        by_cat.setdefault(setup['categories'][key], []).append(j)
    for cat, values in by_cat.items():
        assert metrics[f'jf/{cat}/J'] == pytest.approx(
            100 * np.mean(values), abs=1e-9)
    assert {k for k in metrics if k.endswith('/J')} == \
        {'jf/J'} | {f'jf/{c}/J' for c in by_cat}
    # the masks are not trivial (neither all empty nor all full)
    fraction = np.mean([m.mean() for m in expected.values()])
    assert 0.01 < fraction < 0.99, fraction
    check_submission(out, videos, expected)


def test_split_without_masks_needs_format_only(setup, test_script, capsys):
    from cmdyseg.utils.cli import run_cli
    data = str(setup['tmp'] / 'no_masks')
    shutil.copytree(setup['data'], data)
    shutil.rmtree(osp.join(data, 'valid', 'Annotations'))
    capsys.readouterr()
    status = run_cli(
        test_script.main, [
            CONFIG, setup['ckpt'], '--work-dir',
            str(setup['tmp'] / 'work_no_masks')
        ] + cfg_options(data),
        prog='test.py',
        exit=False)
    err = capsys.readouterr().err
    assert status == 1, err[-3000:]
    assert 'Traceback' not in err
    last = err.rstrip('\n').splitlines()[-1]
    assert last.startswith('test.py: error: '), last
    assert '--format-only --out' in last, last
    assert 'no ground-truth masks' in last, last

    out = str(setup['tmp'] / 'sub_format_only')
    metrics = test_script.main([
        CONFIG, setup['ckpt'], '--work-dir',
        str(setup['tmp'] / 'work_format_only'), '--format-only', '--out', out
    ] + cfg_options(data))
    assert dict(metrics) == {
        'submission/videos': 2,
        'submission/expressions': 8,
        'submission/frames': 64
    }
    check_submission(out, setup['videos'], setup['expected'])


# ------------------------------------------------ the metrics on their own
def square(r0, c0, side, shape=(4, 5)):
    m = np.zeros(shape, np.uint8)
    m[r0:r0 + side, c0:c0 + side] = 1
    return m


EMPTY = np.zeros((4, 5), np.uint8)
# e0: frame 0: 2x2 squares one column apart, J = 2 / 6; frame 1: both
# empty, J = 1 -> 2/3.  e1: equal masks, J = 1.  J = (2/3 + 1) / 2 = 5/6
PRED = {
    ('v1', '0'): np.stack([square(0, 0, 2), EMPTY]),
    ('v1', '1'): np.stack([square(1, 1, 3), square(0, 2, 2)]),
    ('v2', '0'): np.stack([square(2, 2, 2), EMPTY, square(0, 0, 1)]),
}
GT = {
    ('v1', '0'): np.stack([square(0, 1, 2), EMPTY]),
    ('v1', '1'): PRED['v1', '1'].copy(),
}
FRAMES = {'v1': ['00000.jpg', '00005.jpg'],
          'v2': ['00000.jpg', '00005.jpg', '00010.jpg']}


def record(vid, exp_id, pred=None, with_gt=True):
    pred = PRED[vid, exp_id] if pred is None else pred
    rec = dict(video_id=vid, exp_id=exp_id, sentence='s', category=None,
               anno_set=None, frame_names=FRAMES[vid],
               ori_shape=pred.shape[1:], pred_masks=encode_masks(pred),
               scores=[0.5] * len(pred))
    if with_gt:
        rec['gt_masks'] = encode_masks(GT[vid, exp_id])
    return rec


def test_jf_metric_on_rle_records_with_a_padded_duplicate():
    metric = JFMetric(bound_th=0)
    metric.process(None, [record('v1', '0'), record('v1', '1')])
    plain = metric.compute_metrics(list(metric.results))
    assert plain['J'] == pytest.approx(100 * 5 / 6)
    assert plain['J&F'] == pytest.approx((plain['J'] + plain['F']) / 2)
    # the (v1, 0) record again, as a distributed sampler pads the last
    # batch: it weighs as one expression, the scores do not move
    metric.process(None, [record('v1', '0')])
    assert len(metric.results) == 2  # one result per process call
    padded = metric.compute_metrics(list(metric.results))
    for key in ('J', 'F', 'J&F'):
        assert padded[key] == pytest.approx(plain[key])
    # the records' RLEs are those of the masks
    rle = record('v1', '0')['pred_masks']
    np.testing.assert_array_equal(
        np.stack([mask_utils.decode(r) for r in rle]), PRED['v1', '0'])


def _tree(folder):
    """relative path -> sha256 of every file under ``folder``."""
    out = {}
    for d, _, files in os.walk(folder):
        for n in files:
            path = osp.join(d, n)
            with open(path, 'rb') as f:
                out[osp.relpath(path, folder)] = hashlib.sha256(
                    f.read()).hexdigest()
    return out


def test_submission_dedupes_replaces_and_survives_a_failure(tmp_path):
    out = tmp_path / 'sub'
    old = out / 'Annotations' / 'old_video' / '0'
    old.mkdir(parents=True)
    Image.fromarray(np.zeros((2, 2), np.uint8), mode='L').save(
        old / '00000.png')

    metric = ReferVOSSubmission(str(out))
    metric.process(None, [
        record('v1', '0', with_gt=False),
        record('v1', '1', with_gt=False)
    ])
    metric.process(None, [record('v2', '0', with_gt=False)])
    # a distributed sampler's pad: (v1, 0) once more
    metric.process(None, [record('v1', '0', with_gt=False)])
    counts = metric.compute_metrics(list(metric.results))
    assert counts == dict(videos=2, expressions=3, frames=7)

    names = sorted(f'Annotations/{vid}/{exp_id}/{osp.splitext(f)[0]}.png'
                   for vid, exp_id in PRED for f in FRAMES[vid])
    with zipfile.ZipFile(out / 'submission.zip') as zf:
        assert sorted(zf.namelist()) == names
        for name in names:
            png = Image.open(io.BytesIO(zf.read(name)))
            assert png.mode == 'L'
            _, vid, exp_id, frame = name[:-4].split('/')
            t = [osp.splitext(f)[0] for f in FRAMES[vid]].index(frame)
            np.testing.assert_array_equal(
                np.array(png), PRED[vid, exp_id][t] * 255)
    # the old Annotations folder is replaced, nothing else is left
    assert sorted(_tree(out)) == sorted(['submission.zip'] + names)
    before = _tree(out)

    # a second run whose compute fails (a PNG is missing): the first
    # run's submission stays as it was
    again = ReferVOSSubmission(str(out))
    other = 1 - PRED['v1', '0']
    again.process(None, [record('v1', '0', pred=other, with_gt=False)])
    again.process(None, [record('v2', '0', with_gt=False)])
    staged = out / '.partial-rank0' / 'Annotations' / 'v2' / '0'
    os.remove(staged / '00005.png')
    with pytest.raises(FileNotFoundError, match='v2/0/00005.png'):
        again.compute_metrics(list(again.results))
    after = {k: v for k, v in _tree(out).items()
             if not k.startswith('.partial-rank0')}
    assert after == before
    # no temporary merge folder beside Annotations
    assert sorted(n for n in os.listdir(out)
                  if n not in ('.partial-rank0', )) == \
        ['Annotations', 'submission.zip']


def test_submission_refuses_bad_records(tmp_path):
    metric = ReferVOSSubmission(str(tmp_path / 'sub'))
    rec = record('v1', '0', with_gt=False)
    rec['frame_names'] = FRAMES['v1'][:1]
    with pytest.raises(ValueError, match='2 predicted masks for 1 frames'):
        metric.process(None, [rec])
    rec = record('v1', '0', with_gt=False)
    rec['exp_id'] = '../x'
    with pytest.raises(Exception, match='cannot be a path component'):
        metric.process(None, [rec])
    with pytest.raises(ValueError, match='no predictions'):
        ReferVOSSubmission(str(tmp_path / 'empty')).compute_metrics([])


def test_submission_archive_root_for_mevis(tmp_path):
    """archive_root='' puts the video folders at the zip's root (MeViS);
    the files on disk stay under Annotations/."""
    from cmdyseg.evaluation.metrics import ReferVOSSubmission
    from cmdyseg.utils.errors import InvalidInputError
    mask = np.zeros((2, 4, 5), np.uint8)
    mask[1, 1:3, 2:4] = 1
    metric = ReferVOSSubmission(str(tmp_path / 'out'), archive_root='')
    metric.process(None, [
        dict(video_id='v1', exp_id='0', frame_names=['00000', '00001'],
             pred_masks=mask)
    ])
    metric.compute_metrics(metric.results)
    with zipfile.ZipFile(tmp_path / 'out' / 'submission.zip') as zf:
        assert sorted(zf.namelist()) == ['v1/0/00000.png', 'v1/0/00001.png']
    assert (tmp_path / 'out' / 'Annotations' / 'v1' / '0' /
            '00001.png').is_file()
    with pytest.raises(InvalidInputError, match='archive_root'):
        ReferVOSSubmission(str(tmp_path / 'x'), archive_root='Masks')


def test_dump_video_results_keeps_every_expression(tmp_path):
    """One result per process call (a video), so the collection trimmed
    to the number of videos keeps all expressions; the file is flat."""
    import mmengine

    from cmdyseg.evaluation.metrics import DumpVideoResults
    out = str(tmp_path / 'preds.pkl')
    metric = DumpVideoResults(out_file_path=out)
    metric.process(None, [dict(video_id='a', exp_id='0'),
                          dict(video_id='a', exp_id='1')])
    metric.process(None, [dict(video_id='b', exp_id='0')])
    metric.evaluate(2)  # size = number of videos, as the loop reports
    assert [(r['video_id'], r['exp_id']) for r in mmengine.load(out)] == [
        ('a', '0'), ('a', '1'), ('b', '0')]


def test_test_py_dumps_video_level_with_dump_video_results(
        tmp_path, test_script):
    from cmdyseg.utils.cli import load_config
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')  # only its existence is checked by merge_args
    args = test_script.parse_args([
        CONFIG, str(ckpt), '--dump', str(tmp_path / 'p.pkl'), '--work-dir',
        str(tmp_path / 'wd')
    ])
    cfg = test_script.merge_args(load_config(CONFIG), args)
    types = [m['type'] for m in cfg.test_evaluator]
    assert types == ['JFMetric', 'DumpVideoResults']


@pytest.mark.parametrize('kwargs,message', [
    (dict(window_stride=0), 'window_stride must be an int >= 1'),
    (dict(window_stride=2, interpolate='masks'),
     "interpolate must be one of \\('features', 'responses', 'deep'\\)"),
    (dict(share_frames='no'), "share_frames must be True or False, got 'no'"),
])
def test_loop_arguments_are_checked_first(kwargs, message):
    from cmdyseg.engine.runner.video_test_loop import ReferVideoTestLoop
    from cmdyseg.utils.errors import InvalidInputError

    # refused before the runner or the dataloader is looked at
    with pytest.raises(InvalidInputError, match=message):
        ReferVideoTestLoop(None, None, None, **kwargs)
