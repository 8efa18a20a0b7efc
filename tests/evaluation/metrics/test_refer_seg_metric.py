# Copyright (c) cmdyseg contributors. All rights reserved.
"""ReferSegMetric on hand-built masks whose metrics are worked out by hand.

Masks live on a 20 x 20 frame (400 pixels). ``sample(gt=(a, b),
pred=(c, d))`` sets the pixels with flat (row-major) index in [a, b) for
the ground truth and [c, d) for the prediction, so intersection and union
are read off the two ranges.
"""
import json
import math
import os

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData
from pycocotools import mask as mask_utils

from cmdyseg.evaluation import ReferSegMetric
from cmdyseg.registry import METRICS
from cmdyseg.structures import ReferSegDataSample

H, W = 20, 20
A2D_META = dict(
    actors=['adult', 'baby', 'ball', 'bird', 'car', 'cat', 'dog'],
    actions=[
        'climbing', 'crawling', 'eating', 'flying', 'jumping', 'rolling',
        'running', 'walking', 'none'
    ])


def flat_mask(rng, shape=(H, W)):
    m = np.zeros(shape[0] * shape[1], dtype=np.uint8)
    if rng is not None:
        m[rng[0]:rng[1]] = 1
    return m.reshape(shape)


def sample(gt, pred, idx=0, code=-1, score=None, shape=(H, W),
           gt_shape=None):
    s = ReferSegDataSample(
        metainfo=dict(
            video_id=f'vid{idx}',
            frame_id=idx + 1,
            instance_id=str(idx % 3),
            sentence=f'sentence {idx}',
            ori_shape=shape,
            img_shape=(8, 8),
            actor_action=code))
    s.pred_mask = PixelData(data=torch.from_numpy(flat_mask(pred, shape))[
        None])
    s.ori_gt_mask = PixelData(data=torch.from_numpy(
        flat_mask(gt, gt_shape or shape))[None])
    if score is not None:
        s.pred_score = score
    return s


def evaluate(samples, as_dict=False, **kwargs):
    dataset_meta = kwargs.pop('dataset_meta', None)
    metric = ReferSegMetric(**kwargs)
    if dataset_meta is not None:
        metric.dataset_meta = dataset_meta
    # Feed in two batches, as the evaluation loop does.
    half = len(samples) // 2
    for batch in (samples[:half], samples[half:]):
        if as_dict:
            batch = [s.to_dict() for s in batch]
        metric.process(None, batch)
    return metric.compute_metrics(metric.results)


# IoUs: 1.0, 0.5 (exactly), 0.51, 0.7 (exactly), 0.0, 0.95 (exactly),
# 0.55 (exactly, a threshold of the mAP that floats get wrong easily).
PAPER_SAMPLES = [
    dict(gt=(0, 40), pred=(0, 40)),  # I 40, U 40
    dict(gt=(0, 40), pred=(0, 20)),  # I 20, U 40
    dict(gt=(0, 100), pred=(0, 51)),  # I 51, U 100
    dict(gt=(0, 100), pred=(0, 70)),  # I 70, U 100
    dict(gt=(0, 50), pred=(50, 100)),  # I 0, U 100
    dict(gt=(0, 100), pred=(0, 95)),  # I 95, U 100
    dict(gt=(0, 20), pred=(0, 11)),  # I 11, U 20
]


def paper_samples():
    return [sample(idx=i, **kw) for i, kw in enumerate(PAPER_SAMPLES)]


@pytest.mark.parametrize('as_dict', [False, True])
def test_paper_metrics_by_hand(as_dict):
    res = evaluate(paper_samples(), as_dict=as_dict, coco_ap=False)
    # IoU > t (strictly), counted per threshold 0.50, 0.55, ..., 0.95:
    # 0.50 -> {1, .51, .55, .7, .95} = 5; 0.55 .. 0.65 -> {1, .7, .95} = 3;
    # 0.70 .. 0.90 -> {1, .95} = 2; 0.95 -> {1} = 1.
    assert res['P@0.5'] == pytest.approx(100 * 5 / 7)
    assert res['P@0.6'] == pytest.approx(100 * 3 / 7)
    assert res['P@0.7'] == pytest.approx(100 * 2 / 7)
    assert res['P@0.8'] == pytest.approx(100 * 2 / 7)
    assert res['P@0.9'] == pytest.approx(100 * 2 / 7)
    # mAP = (5 + 3 + 3 + 3 + 2 + 2 + 2 + 2 + 2 + 1) / (10 * 7)
    assert res['mAP'] == pytest.approx(100 * 25 / 70)
    # mIoU = (1 + .5 + .51 + .7 + 0 + .95 + .55) / 7
    assert res['mIoU'] == pytest.approx(100 * 4.21 / 7)
    # oIoU = (40+20+51+70+0+95+11) / (40+40+100+100+100+100+20) = 287/500
    assert res['oIoU'] == pytest.approx(100 * 287 / 500)
    assert res['oIoU'] != pytest.approx(res['mIoU'])
    assert not any(k.startswith('coco/') for k in res)
    # no sample carries an actor-action code: no breakdown
    assert not any(k.startswith(('actor/', 'action/')) for k in res)


def test_threshold_is_strict():
    exactly_half = evaluate([sample(gt=(0, 40), pred=(0, 20))] * 2,
                            coco_ap=False)
    just_above = evaluate([sample(gt=(0, 399), pred=(0, 200))] * 2,
                          coco_ap=False)  # IoU 200/399 = 0.50125
    assert exactly_half['P@0.5'] == 0.0
    assert just_above['P@0.5'] == 100.0
    assert just_above['P@0.6'] == 0.0
    # IoU exactly 0.9 is not above 0.9; 0.9025 is
    assert evaluate([sample(gt=(0, 100), pred=(0, 90))] * 2,
                    coco_ap=False)['P@0.9'] == 0.0
    assert evaluate([sample(gt=(0, 400), pred=(0, 361))] * 2,
                    coco_ap=False)['P@0.9'] == 100.0


def test_empty_masks():
    # empty prediction on empty ground truth: IoU 1, no effect on oIoU
    res = evaluate([
        sample(gt=None, pred=None, idx=0),
        sample(gt=(0, 40), pred=(0, 20), idx=1)
    ])
    assert res['mIoU'] == pytest.approx(75.0)  # (1 + 0.5) / 2
    assert res['oIoU'] == pytest.approx(50.0)  # (0 + 20) / (0 + 40)
    assert res['P@0.5'] == pytest.approx(50.0)  # only the empty pair
    assert res['P@0.9'] == pytest.approx(50.0)
    assert res['mAP'] == pytest.approx(50.0)
    # COCO ignores the empty pair; the other detection has IoU 0.5, which
    # COCOeval matches at 0.5 (it tests IoU >= t, the paper IoU > t)
    assert res['coco/AP50'] == pytest.approx(100.0)
    assert res['coco/AP75'] == pytest.approx(0.0)

    # only empty pairs: every IoU is 1, the oIoU convention gives 100,
    # COCO AP is undefined
    res = evaluate([sample(gt=None, pred=None, idx=i) for i in range(2)])
    assert res['mIoU'] == 100.0 and res['oIoU'] == 100.0
    assert res['mAP'] == 100.0 and res['P@0.9'] == 100.0
    assert math.isnan(res['coco/AP'])

    # empty prediction on an object, and a mask on an empty ground truth
    res = evaluate([
        sample(gt=(0, 30), pred=None, idx=0),
        sample(gt=None, pred=(0, 30), idx=1),
    ])
    assert res['mIoU'] == 0.0 and res['oIoU'] == 0.0
    assert res['P@0.5'] == 0.0 and res['mAP'] == 0.0
    assert res['coco/AP'] == 0.0  # one object, missed; one false positive

    # only empty predictions on objects: no detection at all -> AP 0
    res = evaluate([sample(gt=(0, 30), pred=None, idx=i) for i in range(2)])
    assert res['coco/AP'] == 0.0


# COCO AP by hand. Each sample is one image with one object and one
# detection. pycocotools ranks detections by score, accumulates TP / FP,
# makes precision non-increasing from the right and reads it at the 101
# recall points 0, 0.01, ..., 1 (0 where a recall is never reached).
# Two perfect + two zero-overlap masks, 4 objects (TP/FP at every IoU
# threshold 0.50:0.95):
# - perfect ranked first: TP TP FP FP, recall .25 .5 .5 .5, precision
#   1 1 2/3 1/2 -> precision 1 at the 51 recall points 0 .. 0.50, 0 above:
#   AP = 51 / 101.
# - zero-overlap ranked first: FP FP TP TP, recall 0 0 .25 .5, precision
#   0 0 1/3 1/2 -> 1/2 after the right-to-left maximum, at 51 points:
#   AP = 0.5 * 51 / 101.
HALF_AP = 100 * 51 / 101
QUARTER_AP = 100 * 0.5 * 51 / 101


def half_perfect(good_score, bad_score, good_first=True):
    good = [
        sample(gt=(0, 40), pred=(0, 40), idx=i, score=good_score)
        for i in range(2)
    ]
    bad = [
        sample(gt=(0, 40), pred=(40, 80), idx=2 + i, score=bad_score)
        for i in range(2)
    ]
    return good + bad if good_first else bad + good


def test_coco_ap_all_perfect():
    res = evaluate([sample(gt=(0, 40), pred=(0, 40), idx=i)
                    for i in range(4)])
    for key in ('coco/AP', 'coco/AP50', 'coco/AP75', 'coco/AP_s'):
        assert res[key] == pytest.approx(100.0), key
    # 40-pixel objects are all small: medium / large AP undefined
    assert math.isnan(res['coco/AP_m']) and math.isnan(res['coco/AP_l'])


@pytest.mark.parametrize('as_dict', [False, True])
def test_coco_ap_half_perfect(as_dict):
    res = evaluate(half_perfect(0.9, 0.1, good_first=False), as_dict)
    assert res['coco/AP'] == pytest.approx(HALF_AP)
    assert res['coco/AP50'] == pytest.approx(HALF_AP)
    assert res['coco/AP75'] == pytest.approx(HALF_AP)
    # the paper metrics do not depend on the scores
    assert res['mIoU'] == pytest.approx(50.0)
    assert res['mAP'] == pytest.approx(50.0)

    res = evaluate(half_perfect(0.1, 0.9, good_first=True), as_dict)
    assert res['coco/AP'] == pytest.approx(QUARTER_AP)


def test_coco_ap_ties_follow_sample_order():
    # no pred_score: every score is 1.0 and COCOeval's stable sort keeps
    # the sample order (documented behaviour)
    assert evaluate(half_perfect(None, None, True))['coco/AP'] == \
        pytest.approx(HALF_AP)
    assert evaluate(half_perfect(None, None, False))['coco/AP'] == \
        pytest.approx(QUARTER_AP)


def test_coco_ap_false_positive_on_empty_gt():
    # perfect object + a mask on an empty frame, object ranked first:
    # TP FP, recall 1 1, precision 1 1/2 -> AP 100; ranked last: 50.
    res = evaluate([
        sample(gt=(0, 40), pred=(0, 40), idx=0, score=0.9),
        sample(gt=None, pred=(0, 40), idx=1, score=0.1)
    ])
    assert res['coco/AP'] == pytest.approx(100.0)
    res = evaluate([
        sample(gt=(0, 40), pred=(0, 40), idx=0, score=0.1),
        sample(gt=None, pred=(0, 40), idx=1, score=0.9)
    ])
    assert res['coco/AP'] == pytest.approx(50.0)


def test_score_map_mean_inside_mask():
    metric = ReferSegMetric()
    s = sample(gt=(0, 40), pred=(0, 4))
    score = torch.zeros(1, H, W)
    score.view(-1)[:4] = torch.tensor([0.2, 0.4, 0.6, 0.8])
    score.view(-1)[4:] = 5.0  # outside the mask: ignored
    s.pred_score = PixelData(data=score)
    metric.process(None, [s])
    assert metric.results[0]['score'] == pytest.approx(0.5)
    s.pred_score = torch.tensor(0.25)
    metric.process(None, [s.to_dict()])
    assert metric.results[1]['score'] == pytest.approx(0.25)


def test_object_and_dict_inputs_agree():
    samples = paper_samples()
    for i, s in enumerate(samples):
        s.set_metainfo(dict(actor_action=11 + i))
    obj = ReferSegMetric()
    obj.process(None, samples)
    dct = ReferSegMetric()
    dct.process(None, [s.to_dict() for s in samples])
    assert obj.results == dct.results
    assert obj.compute_metrics(obj.results) == pytest.approx(
        dct.compute_metrics(dct.results), nan_ok=True)


def test_rle_dump_round_trip(tmp_path):
    samples = paper_samples() + [sample(gt=(3, 9), pred=None, idx=7)]
    samples[2].set_metainfo(dict(actor_action=54))
    out = tmp_path / 'sub' / 'preds.json'
    evaluate(samples, dump_rle=str(out))
    entries = json.loads(out.read_text())
    assert os.listdir(out.parent) == ['preds.json']  # no temp file left
    assert len(entries) == len(samples)
    for s, e in zip(samples, entries):
        assert e['video_id'] == s.video_id
        assert e['frame_id'] == s.frame_id
        assert e['instance_id'] == s.instance_id
        assert e['sentence'] == s.sentence
        assert e['actor_action'] == s.actor_action
        assert e['ori_shape'] == [H, W]
        assert e['score'] == 1.0
        rle = dict(e['segmentation'])
        rle['counts'] = rle['counts'].encode()
        decoded = mask_utils.decode(rle)
        assert decoded.shape == (H, W)
        np.testing.assert_array_equal(decoded, s.pred_mask.data[0].numpy())
    assert [e['iou'] for e in entries] == pytest.approx(
        [1.0, 0.5, 0.51, 0.7, 0.0, 0.95, 0.55, 0.0])
    with pytest.raises(ValueError, match='.json'):
        ReferSegMetric(dump_rle=str(tmp_path / 'preds.pkl'))


def breakdown_samples():
    return [
        # adult climbing (11): IoU 1 and 0.5; adult crawling (12): IoU 0
        sample(gt=(0, 40), pred=(0, 40), idx=0, code=11),
        sample(gt=(0, 40), pred=(0, 20), idx=1, code=11),
        sample(gt=(0, 50), pred=(50, 100), idx=2, code=12),
        # dog none (79): IoU 0.7; then one sample without a code: IoU 0.51
        sample(gt=(0, 100), pred=(0, 70), idx=3, code=79),
        sample(gt=(0, 100), pred=(0, 51), idx=4, code=-1),
    ]


def test_per_actor_action_breakdown():
    res = evaluate(breakdown_samples(), coco_ap=False,
                   dataset_meta=A2D_META)
    # adult: IoU 1, .5, 0 -> mIoU 50; oIoU (40+20+0)/(40+40+100) = 1/3;
    # P@0.5: only the perfect one (0.5 is not above 0.5)
    assert res['actor/adult/mIoU'] == pytest.approx(50.0)
    assert res['actor/adult/oIoU'] == pytest.approx(100 / 3)
    assert res['actor/adult/P@0.5'] == pytest.approx(100 / 3)
    assert res['actor/dog/mIoU'] == pytest.approx(70.0)
    assert res['actor/dog/P@0.5'] == pytest.approx(100.0)
    # climbing: IoU 1, .5 -> mIoU 75, oIoU 60/80
    assert res['action/climbing/mIoU'] == pytest.approx(75.0)
    assert res['action/climbing/oIoU'] == pytest.approx(75.0)
    assert res['action/climbing/P@0.5'] == pytest.approx(50.0)
    assert res['action/crawling/mIoU'] == 0.0
    assert res['action/none/mIoU'] == pytest.approx(70.0)
    groups = {k.rsplit('/', 1)[0] for k in res if k.count('/') == 2}
    assert groups == {
        'actor/adult', 'actor/dog', 'action/climbing', 'action/crawling',
        'action/none'
    }
    # the overall numbers include the sample without a code
    assert res['mIoU'] == pytest.approx(100 * (1 + .5 + 0 + .7 + .51) / 5)

    # without names in dataset_meta the digits name the groups
    res = evaluate(breakdown_samples(), coco_ap=False)
    assert res['actor/1/mIoU'] == pytest.approx(50.0)
    assert res['action/9/mIoU'] == pytest.approx(70.0)
    assert 'actor/adult/mIoU' not in res

    res = evaluate(breakdown_samples(), coco_ap=False, breakdown=False)
    assert not any(k.startswith(('actor/', 'action/')) for k in res)


@pytest.mark.parametrize('code, match', [(5, 'invalid actor_action 5'),
                                         (80, 'invalid actor_action 80'),
                                         (81, 'actor index 8, outside')])
def test_bad_actor_action_code(code, match):
    samples = [sample(gt=(0, 4), pred=(0, 4), code=code)] * 2
    with pytest.raises(ValueError, match=match):
        evaluate(samples, dataset_meta=A2D_META)


def test_size_mismatch_names_sample():
    metric = ReferSegMetric()
    s = sample(gt=(0, 4), pred=(0, 4), idx=4, gt_shape=(20, 24))
    for inp in (s, s.to_dict()):
        with pytest.raises(ValueError) as err:
            metric.process(None, [inp])
        msg = str(err.value)
        for part in ("video_id='vid4'", 'frame_id=5', "instance_id='1'",
                     '(20, 20)', '(20, 24)'):
            assert part in msg, (part, msg)
    assert metric.results == []


def test_bad_masks_rejected():
    metric = ReferSegMetric()
    s = sample(gt=(0, 4), pred=(0, 4))
    s.pred_mask = PixelData(data=torch.full((1, H, W), 0.3))
    with pytest.raises(ValueError, match="vid0.*float map"):
        metric.process(None, [s])
    s = sample(gt=(0, 4), pred=(0, 4)).to_dict()
    del s['ori_gt_mask']
    with pytest.raises(KeyError, match='no "ori_gt_mask"'):
        metric.process(None, [s])
    with pytest.raises(ValueError, match='no samples'):
        metric.compute_metrics([])


def test_evaluator_with_registry_and_prefix(tmp_path):
    # scope-qualified: independent of the default scope other tests set
    metric = METRICS.build(dict(type='cmdyseg.ReferSegMetric'))
    evaluator = Evaluator([metric])
    evaluator.dataset_meta = A2D_META
    samples = breakdown_samples()
    evaluator.process(samples[:2])  # objects; the evaluator makes dicts
    evaluator.process(samples[2:])
    res = evaluator.evaluate(len(samples))
    assert res['refer_seg/mIoU'] == pytest.approx(100 * 2.71 / 5)
    assert res['refer_seg/actor/adult/mIoU'] == pytest.approx(50.0)
    assert 'refer_seg/coco/AP' in res
    custom = Evaluator([ReferSegMetric(prefix='a2d', coco_ap=False)])
    custom.process(samples)
    assert set(custom.evaluate(len(samples))) >= {'a2d/mAP', 'a2d/oIoU'}
