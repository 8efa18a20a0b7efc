# Copyright (c) cmdyseg contributors. All rights reserved.
"""JFMetric end to end on hand-checked (video, expression) samples."""
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement, PixelData

from cmdyseg.evaluation import JFMetric
from cmdyseg.registry import METRICS
from cmdyseg.utils.errors import InvalidInputError


def square(r0, c0, side, size=6):
    m = np.zeros((size, size), np.uint8)
    m[r0:r0 + side, c0:c0 + side] = 1
    return m


SQ = square(1, 1, 2)  # 2x2 at (1, 1)
SHIFT = square(1, 2, 2)  # the same, one column to the right
EMPTY = np.zeros((6, 6), np.uint8)

# Per frame with bound_th=0 (radius 0), see tests/evaluation/functional:
#   SQ vs SQ: J = 1, F = 1;  SQ vs SHIFT: J = 2/6, F = 1/2;
#   EMPTY vs EMPTY: J = 1, F = 1;  EMPTY vs SQ: J = 0, F = 0.
# A (v1, e0, 'a'): J = [1, 1/3] -> 2/3,      F = [1, 1/2] -> 3/4
# B (v1, e1, 'b'): J = [1, 0, 1/3] -> 4/9,   F = [1, 0, 1/2] -> 1/2
# C (v2, e0, 'a'): J = [1/3] -> 1/3,         F = [1/2] -> 1/2
J_ALL = (2 / 3 + 4 / 9 + 1 / 3) / 3
F_ALL = (3 / 4 + 1 / 2 + 1 / 2) / 3


def samples(as_element=False):
    raw = [
        dict(video_id='v1', exp_id='e0', category='a',
             pred=[SQ, SQ], gt=[SQ, SHIFT]),
        dict(video_id='v1', exp_id='e1', category='b',
             pred=[EMPTY, EMPTY, SQ], gt=[EMPTY, SQ, SHIFT]),
        dict(video_id='v2', exp_id='e0', category='a',
             pred=[SHIFT], gt=[SQ]),
    ]
    out = []
    for r in raw:
        pred, gt = np.stack(r.pop('pred')), np.stack(r.pop('gt'))
        if as_element:
            el = BaseDataElement(metainfo=r)
            el.pred_masks = PixelData(data=torch.from_numpy(pred))
            el.gt_masks = torch.from_numpy(gt).bool()
            out.append(el)
        else:
            out.append(dict(metainfo=r, pred_masks=pred, gt_masks=gt))
    return out


def run(metric, data):
    metric.process({}, data)
    return metric.evaluate(len(data))


@pytest.mark.parametrize('as_element', [False, True])
def test_jf_metric_end_to_end(as_element):
    metric = METRICS.build(dict(type='JFMetric', bound_th=0))
    assert isinstance(metric, JFMetric)
    out = run(metric, samples(as_element))
    assert out['jf/J'] == pytest.approx(100 * J_ALL)
    assert out['jf/F'] == pytest.approx(100 * F_ALL)
    assert out['jf/J&F'] == pytest.approx(100 * (J_ALL + F_ALL) / 2)
    assert out['jf/a/J'] == pytest.approx(100 * (2 / 3 + 1 / 3) / 2)
    assert out['jf/a/F'] == pytest.approx(100 * (3 / 4 + 1 / 2) / 2)
    assert out['jf/b/J'] == pytest.approx(100 * 4 / 9)
    assert out['jf/b/J&F'] == pytest.approx(100 * (4 / 9 + 1 / 2) / 2)


def test_jf_metric_default_tolerance_and_no_breakdown():
    # 6x6 with 0.008 -> radius 1: the one-column shift is then F = 1
    metric = JFMetric(breakdown=False, prefix='mevis')
    out = run(metric, samples())
    assert sorted(out) == ['mevis/F', 'mevis/J', 'mevis/J&F']
    assert out['mevis/J'] == pytest.approx(100 * J_ALL)
    # A: F = [1, 1]; B: F = [1, 0, 1] -> 2/3; C: F = [1]
    assert out['mevis/F'] == pytest.approx(100 * (1 + 2 / 3 + 1) / 3)


def test_jf_metric_annotation_sets():
    data = samples()
    # set 0 holds A and B, set 1 holds C
    for s, k in zip(data, [0, 0, 1]):
        s['metainfo']['anno_set'] = k
    metric = JFMetric(bound_th=0, average_annotation_sets=True)
    out = run(metric, data)
    j0, j1 = (2 / 3 + 4 / 9) / 2, 1 / 3
    f0, f1 = (3 / 4 + 1 / 2) / 2, 1 / 2
    assert out['jf/J'] == pytest.approx(100 * (j0 + j1) / 2)
    assert out['jf/F'] == pytest.approx(100 * (f0 + f1) / 2)
    # category 'b' is only in set 0, so it is not in every set's result
    assert 'jf/b/J' not in out and 'jf/a/J' in out
    with pytest.raises(KeyError):
        JFMetric(average_annotation_sets=True).process({}, samples())


def test_jf_metric_bad_input():
    metric = JFMetric()
    bad = dict(metainfo=dict(video_id='v', exp_id='e'),
               pred_masks=np.zeros((2, 6, 6)), gt_masks=np.zeros((3, 6, 6)))
    with pytest.raises(ValueError):
        metric.process({}, [bad])
    soft = dict(metainfo=dict(video_id='v', exp_id='e'),
                pred_masks=np.full((1, 6, 6), 0.3), gt_masks=np.zeros((6, 6)))
    with pytest.raises(ValueError):
        metric.process({}, [soft])
    with pytest.raises(KeyError):
        metric.process({}, [dict(pred_masks=SQ, gt_masks=SQ)])
    # a single (H, W) frame is accepted as T = 1
    metric.process({}, [dict(video_id='v', exp_id='e', pred_masks=SQ,
                             gt_masks=SHIFT)])
    assert metric.results[-1][0]['j'] == pytest.approx([1 / 3])
    # no ground truth (a split without public masks): says what to do
    with pytest.raises(InvalidInputError, match='--format-only --out'):
        metric.process({}, [dict(video_id='v', exp_id='e', pred_masks=SQ)])


def test_jf_metric_rle_masks_and_one_result_per_call():
    from pycocotools import mask as mask_utils

    def rles(stack):
        return mask_utils.encode(
            np.asfortranarray(np.asarray(stack, np.uint8).transpose(1, 2, 0)))

    pred, gt = np.stack([SQ, SQ]), np.stack([SHIFT, SQ])
    metric = JFMetric()
    # a video with two expressions in one call, masks as RLE lists
    metric.process({}, [
        dict(video_id='v', exp_id='0', pred_masks=rles(pred),
             gt_masks=rles(gt)),
        dict(video_id='v', exp_id='1', pred_masks=pred, gt_masks=gt)
    ])
    assert len(metric.results) == 1 and len(metric.results[0]) == 2
    assert metric.results[0][0]['j'] == pytest.approx([1 / 3, 1.0])
    first, second = metric.results[0]
    assert (first['j'], first['f']) == (second['j'], second['f'])
    scores = metric.compute_metrics(metric.results)
    assert scores['J'] == pytest.approx(100 * (1 / 3 + 1) / 2)
