# Copyright (c) cmdyseg contributors. All rights reserved.
"""Referring (actor and action) segmentation metric.

The paper's protocol (CMDyConv, AAAI 2020, section "Experiments"), computed
on binary masks at each annotated frame's original size:

- overall IoU (``oIoU``) = sum of intersections / sum of unions over the set,
- mean IoU (``mIoU``) = mean of the per-sample IoU,
- precision@t (``P@t``) = share of samples whose IoU is *higher* than t,
  t in {0.5, 0.6, 0.7, 0.8, 0.9},
- ``mAP`` = mean of precision@t over t in 0.50:0.05:0.95 (ten thresholds).

Later work (MTTR, ReferFormer) also reports a COCO-style AP computed by
pycocotools; it is reported under ``coco/...`` keys and is a different
number from the paper's ``mAP``.
"""
import contextlib
import io
import json
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement, PixelData
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cmdyseg.fileio import atomic_write
from cmdyseg.registry import METRICS

# Thresholds in percent, so that "IoU > t" can be decided exactly in
# integers: I / U > k / 100  <=>  100 * I > k * U  (for U > 0).
PRECISION_THRS = (50, 60, 70, 80, 90)
MAP_THRS = tuple(range(50, 100, 5))  # 0.50:0.05:0.95, ten thresholds

# COCOeval.stats index -> reported key (all at maxDets=100, area 'all'
# unless the name says otherwise).
COCO_STATS = OrderedDict([
    ('coco/AP', 0),
    ('coco/AP50', 1),
    ('coco/AP75', 2),
    ('coco/AP_s', 3),
    ('coco/AP_m', 4),
    ('coco/AP_l', 5),
])


def _iou_above(inter: int, union: int, thr_percent: int) -> bool:
    """Whether IoU = inter / union is strictly higher than thr_percent / 100.

    Decided in integers, so IoU exactly 0.5 is *not* above 0.5. An empty
    prediction on an empty ground truth (union 0) has IoU 1 by convention
    and is above every threshold below 1.
    """
    if union == 0:
        return thr_percent < 100
    return 100 * inter > thr_percent * union


def _sample_iou(inter: int, union: int) -> float:
    """IoU as a fraction in [0, 1]; 1.0 for empty prediction + empty gt."""
    return 1.0 if union == 0 else inter / union


def _encode_rle(mask: np.ndarray) -> dict:
    """COCO RLE of a (H, W) bool mask, ``counts`` as str (JSON-safe)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(
        size=[int(s) for s in rle['size']],
        counts=rle['counts'].decode('ascii'))


def _json_default(obj: Any) -> Any:
    """Turn numpy / torch scalars in metainfo into plain JSON values."""
    if isinstance(obj, (np.integer, )):
        return int(obj)
    if isinstance(obj, (np.floating, )):
        return float(obj)
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return obj.tolist()
    raise TypeError(f'cannot write {type(obj).__name__} to JSON: {obj!r}')


def dump_json_atomic(obj: Any, path: str) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temp file + replace)."""
    with atomic_write(path, 'w', encoding='utf-8', fsync=True) as f:
        json.dump(obj, f, default=_json_default)


@METRICS.register_module()
class ReferSegMetric(BaseMetric):
    """Precision@t, mAP, overall / mean IoU and COCO AP of referred masks.

    Each processed sample is one (video, sentence, annotated frame) and must
    carry, at the annotated frame's original size (H, W):

    - ``pred_mask``: :obj:`PixelData` (or its ``to_dict()``, or an array),
      ``data`` (1, H, W) or (H, W), bool or integer (non-zero = foreground;
      a float mask is accepted only if it holds 0 and 1 only),
    - ``ori_gt_mask``: the ground truth, same shape and conventions,
    - metainfo ``video_id``, ``frame_id``, ``instance_id``, ``sentence``
      and, optionally, ``actor_action`` (A2D code, -1 when none),
    - optionally ``pred_score``: a scalar confidence, or a response map
      (1, H, W) / (H, W) whose mean inside the predicted mask is used.
      It only matters to the COCO AP (see below).

    Samples may be :obj:`ReferSegDataSample` objects or their ``to_dict()``
    (what :class:`mmengine.evaluator.Evaluator` hands to metrics). Only
    compact results are kept per sample: intersection and union pixel
    counts and COCO RLEs of both masks.

    Conventions (all values are **percentages**, as in the paper's tables):

    - IoU of a sample = |P & G| / |P | G|. An empty prediction on an empty
      ground truth is a correct answer and has IoU 1 (100 %): it counts as
      above every precision threshold and adds 1 to the mIoU sum. It adds 0
      to both sums of the oIoU, so it does not change the oIoU. If every
      union of the set is empty, the oIoU is 100 by the same convention.
      An empty prediction on a non-empty ground truth (or the reverse) has
      IoU 0.
    - ``P@t`` counts IoU strictly higher than t (decided exactly, in
      integers): IoU = 0.5 does not count for ``P@0.5``.
    - ``mAP`` (paper) = mean of ``P@t`` over t = 0.50, 0.55, ..., 0.95.
    - COCO AP (``coco/AP``, ``coco/AP50``, ``coco/AP75``, ``coco/AP_s``,
      ``coco/AP_m``, ``coco/AP_l``): pycocotools ``COCOeval`` with
      ``iouType='segm'`` and ``params.useCats = 0``; every sample is one
      image with one ground-truth annotation (its mask) and one detection
      (the predicted mask). The detection score is ``pred_score`` when the
      sample has one, else 1.0 for every prediction; with equal scores
      COCOeval ranks detections in sample order (stable sort), so the AP
      then depends on that order -- give scores for a meaningful AP.
      COCO cannot express "nothing referred, nothing predicted": an empty
      ground truth adds no annotation and an empty prediction adds no
      detection (an empty pair thus leaves the COCO AP unchanged, an empty
      prediction on a real object is a miss, a mask on an empty ground
      truth is a false positive). With no ground-truth mask at all the
      COCO AP is undefined and reported as NaN.
    - Breakdown: samples with ``actor_action`` >= 0 are also grouped by
      actor (tens digit) and by action (units digit), both 1-based, and
      ``mIoU``, ``oIoU`` and ``P@0.5`` are reported per group under
      ``actor/<name>/...`` and ``action/<name>/...``. Names come from
      ``dataset_meta['actors']`` / ``dataset_meta['actions']`` (index =
      digit - 1) when present, else the digit itself is the name.

    Args:
        dump_rle (str, optional): If given, write the predictions to this
            JSON file (atomically): a list with one entry per sample,
            ``{'video_id', 'frame_id', 'instance_id', 'sentence',
            'actor_action', 'ori_shape', 'score', 'iou' (fraction in
            [0, 1]), 'segmentation': {'size': [H, W], 'counts': str}}``,
            decodable with ``pycocotools.mask.decode``. Defaults to None.
        coco_ap (bool): Compute the pycocotools COCO AP. Defaults to True.
        breakdown (bool): Report the per-actor / per-action groups.
            Defaults to True.
        collect_device (str): Device used to collect results across ranks,
            'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names, e.g.
            ``'refer_seg/mIoU'``. Defaults to ``'refer_seg'``.
        collect_dir (str, optional): Folder used to collect results across
            ranks when ``collect_device='cpu'``. Defaults to None.
    """
    default_prefix: Optional[str] = 'refer_seg'

    def __init__(self,
                 dump_rle: Optional[str] = None,
                 coco_ap: bool = True,
                 breakdown: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        if dump_rle is not None and not str(dump_rle).endswith('.json'):
            raise ValueError(
                f'dump_rle must be a .json path, got {dump_rle!r}')
        self.dump_rle = dump_rle
        self.coco_ap = coco_ap
        self.breakdown = breakdown

    # ------------------------------------------------------------------
    # per-sample processing
    # ------------------------------------------------------------------
    @staticmethod
    def _get(sample: Any, key: str) -> Any:
        """Read ``key`` from a data sample object or its ``to_dict()``."""
        if isinstance(sample, dict):
            if key in sample:
                return sample[key]
            return sample.get('metainfo', {}).get(key)
        if isinstance(sample, BaseDataElement):
            return sample.get(key)
        raise TypeError('data samples must be ReferSegDataSample objects or '
                        f'dicts, got {type(sample).__name__}')

    @staticmethod
    def _to_numpy(value: Any) -> np.ndarray:
        if isinstance(value, PixelData):
            value = value.data
        elif isinstance(value, dict):
            if 'data' not in value:
                raise KeyError(f'mask dict without "data": {sorted(value)}')
            value = value['data']
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        return np.asarray(value)

    def _mask(self, sample: Any, key: str, name: str) -> np.ndarray:
        """(H, W) bool mask from field ``key``; clear errors on bad input."""
        value = self._get(sample, key)
        if value is None:
            raise KeyError(f'{name}: data sample has no "{key}"')
        arr = self._to_numpy(value)
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 2:
            raise ValueError(f'{name}: "{key}" must have shape (1, H, W) or '
                             f'(H, W), got {tuple(arr.shape)}')
        if arr.dtype == bool:
            return arr
        if np.issubdtype(arr.dtype, np.floating):
            if not np.all((arr == 0) | (arr == 1)):
                raise ValueError(
                    f'{name}: "{key}" is a float map, not a binary mask '
                    f'(values in [{arr.min():g}, {arr.max():g}]); threshold '
                    'it before the metric')
        elif not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f'{name}: "{key}" has unsupported dtype '
                            f'{arr.dtype}')
        return arr != 0

    def _score(self, sample: Any, pred: np.ndarray, name: str) -> float:
        """Detection score for the COCO AP (see the class docstring)."""
        value = self._get(sample, 'pred_score')
        if value is None:
            return 1.0
        arr = self._to_numpy(value).astype(np.float64)
        if arr.size == 1:
            return float(arr.reshape(()))
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.shape != pred.shape:
            raise ValueError(
                f'{name}: pred_score map has shape {tuple(arr.shape)}, '
                f'pred_mask has {tuple(pred.shape)}')
        return float(arr[pred].mean()) if pred.any() else 0.0

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Store intersection, union and RLEs of each sample.

        Args:
            data_batch: Unused (the masks travel in the data samples).
            data_samples: Outputs of the model's ``predict``, objects or
                dicts, each with ``pred_mask`` and ``ori_gt_mask`` (1, H, W).
        """
        for sample in data_samples:
            meta = dict(
                video_id=self._get(sample, 'video_id'),
                frame_id=self._get(sample, 'frame_id'),
                instance_id=self._get(sample, 'instance_id'),
                sentence=self._get(sample, 'sentence'),
            )
            code = self._get(sample, 'actor_action')
            meta['actor_action'] = -1 if code is None else int(code)
            ori_shape = self._get(sample, 'ori_shape')
            name = (f'sample (video_id={meta["video_id"]!r}, '
                    f'frame_id={meta["frame_id"]!r}, '
                    f'instance_id={meta["instance_id"]!r})')
            pred = self._mask(sample, 'pred_mask', name)
            gt = self._mask(sample, 'ori_gt_mask', name)
            if pred.shape != gt.shape:
                raise ValueError(
                    f'{name}: pred_mask has shape {tuple(pred.shape)} but '
                    f'ori_gt_mask has {tuple(gt.shape)}; predictions must be '
                    'returned at the original frame size')
            meta['ori_shape'] = [int(s) for s in (
                ori_shape if ori_shape is not None else gt.shape)]
            self.results.append(
                dict(
                    meta=meta,
                    inter=int(np.count_nonzero(pred & gt)),
                    union=int(np.count_nonzero(pred | gt)),
                    pred_area=int(np.count_nonzero(pred)),
                    gt_area=int(np.count_nonzero(gt)),
                    score=self._score(sample, pred, name),
                    pred_rle=_encode_rle(pred),
                    gt_rle=_encode_rle(gt)))

    # ------------------------------------------------------------------
    # metrics
    # ------------------------------------------------------------------
    @staticmethod
    def _paper_metrics(results: List[dict]) -> Dict[str, float]:
        """P@t, mAP, oIoU, mIoU (percent) of a list of processed results."""
        n = len(results)
        inters = [r['inter'] for r in results]
        unions = [r['union'] for r in results]
        out = OrderedDict()
        above = {
            k: sum(_iou_above(i, u, k) for i, u in zip(inters, unions))
            for k in MAP_THRS
        }
        for k in PRECISION_THRS:
            out[f'P@{k / 100:.1f}'] = 100.0 * above[k] / n
        out['mAP'] = 100.0 * sum(above.values()) / (len(MAP_THRS) * n)
        total_union = sum(unions)
        out['oIoU'] = (100.0 * sum(inters) / total_union
                       if total_union > 0 else 100.0)
        out['mIoU'] = 100.0 * float(
            np.mean([_sample_iou(i, u) for i, u in zip(inters, unions)]))
        return out

    @staticmethod
    def _coco_metrics(results: List[dict]) -> Tuple[Dict[str, float], str]:
        """COCO AP (percent) by pycocotools and COCOeval's summary text."""
        images, gts, dets = [], [], []
        for idx, r in enumerate(results):
            h, w = r['gt_rle']['size']
            images.append(dict(id=idx, height=h, width=w))
            if r['gt_area'] > 0:
                rle = r['gt_rle']
                gts.append(
                    dict(
                        id=len(gts) + 1,
                        image_id=idx,
                        category_id=1,
                        segmentation=rle,
                        area=float(r['gt_area']),
                        bbox=mask_utils.toBbox(rle).tolist(),
                        iscrowd=0))
            if r['pred_area'] > 0:
                dets.append(
                    dict(
                        image_id=idx,
                        category_id=1,
                        segmentation=r['pred_rle'],
                        score=float(r['score'])))
        nan = OrderedDict((k, float('nan')) for k in COCO_STATS)
        if not gts:
            return nan, 'no ground-truth mask: COCO AP undefined (NaN)'
        if not dets:
            # loadRes cannot take an empty list; every object is missed.
            return (OrderedDict((k, 0.0) for k in COCO_STATS),
                    'no non-empty prediction: COCO AP = 0')
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            coco_gt = COCO()
            coco_gt.dataset = dict(
                images=images,
                annotations=gts,
                categories=[dict(id=1, name='referred')])
            coco_gt.createIndex()
            coco_dt = coco_gt.loadRes(dets)
            coco_eval = COCOeval(coco_gt, coco_dt, iouType='segm')
            coco_eval.params.useCats = 0
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        out = OrderedDict()
        for key, idx in COCO_STATS.items():
            stat = float(coco_eval.stats[idx])
            # COCOeval writes -1 when a value is undefined (e.g. no object
            # in an area range).
            out[key] = 100.0 * stat if stat >= 0 else float('nan')
        summary = '\n'.join(
            line for line in text.getvalue().splitlines()
            if line.startswith(' Average'))
        return out, summary

    def _group_name(self, kind: str, digit: int, code: int,
                    meta: dict) -> str:
        names = (self.dataset_meta or {}).get(kind)
        if not names:
            return str(digit)
        if not 1 <= digit <= len(names):
            raise ValueError(
                f'sample (video_id={meta["video_id"]!r}, '
                f'frame_id={meta["frame_id"]!r}, '
                f'instance_id={meta["instance_id"]!r}): actor_action '
                f'{code} gives {kind[:-1]} index {digit}, outside 1..'
                f'{len(names)} of dataset_meta["{kind}"]')
        return str(names[digit - 1])

    def _breakdown(self, results: List[dict]) -> Dict[str, List[dict]]:
        """Group results by actor and by action: {'actor/<name>': list}."""
        groups = OrderedDict()
        keyed = []
        for r in results:
            code = r['meta']['actor_action']
            if code < 0:
                continue
            actor, action = code // 10, code % 10
            if actor < 1 or action < 1:
                raise ValueError(
                    f'sample (video_id={r["meta"]["video_id"]!r}, '
                    f'frame_id={r["meta"]["frame_id"]!r}, '
                    f'instance_id={r["meta"]["instance_id"]!r}): invalid '
                    f'actor_action {code} (tens = actor, units = action, '
                    'both 1-based; -1 for none)')
            keyed.append((0, actor, 'actor/' + self._group_name(
                'actors', actor, code, r['meta']), r))
            keyed.append((1, action, 'action/' + self._group_name(
                'actions', action, code, r['meta']), r))
        for _, _, key, r in sorted(keyed, key=lambda t: (t[0], t[1])):
            groups.setdefault(key, []).append(r)
        return groups

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute all metrics (percentages) from the processed results.

        Returns:
            dict: ``P@0.5`` ... ``P@0.9``, ``mAP``, ``oIoU``, ``mIoU``,
            ``coco/AP``, ``coco/AP50``, ``coco/AP75``, ``coco/AP_s``,
            ``coco/AP_m``, ``coco/AP_l`` and, with the breakdown,
            ``actor/<name>/{mIoU,oIoU,P@0.5}`` and
            ``action/<name>/{mIoU,oIoU,P@0.5}`` (the evaluator adds the
            prefix).
        """
        if not results:
            raise ValueError('ReferSegMetric got no samples to evaluate')
        metrics = self._paper_metrics(results)
        lines = [f'Referring segmentation on {len(results)} samples '
                 '(percent; P@t counts IoU > t; mAP = mean P@t over '
                 't = 0.50:0.05:0.95)']
        lines += _format_table(['metric', 'value'],
                               [[k, f'{v:.2f}'] for k, v in metrics.items()])
        if self.coco_ap:
            coco, summary = self._coco_metrics(results)
            metrics.update(coco)
            lines.append('COCO-style AP (pycocotools COCOeval, segm, '
                         'useCats=0; not the paper mAP):')
            lines.append(summary)
        if self.breakdown:
            groups = self._breakdown(results)
            rows = []
            for key, group in groups.items():
                vals = self._paper_metrics(group)
                for name in ('mIoU', 'oIoU', 'P@0.5'):
                    metrics[f'{key}/{name}'] = vals[name]
                rows.append([
                    key,
                    str(len(group)), f'{vals["mIoU"]:.2f}',
                    f'{vals["oIoU"]:.2f}', f'{vals["P@0.5"]:.2f}'
                ])
            if rows:
                lines.append('Per actor / per action:')
                lines += _format_table(
                    ['group', 'samples', 'mIoU', 'oIoU', 'P@0.5'], rows)
        print_log('\n'.join(lines), logger='current')
        if self.dump_rle is not None:
            self._dump(results)
        return metrics

    def _dump(self, results: List[dict]) -> None:
        entries = []
        for r in results:
            entry = dict(r['meta'])
            entry['score'] = r['score']
            entry['iou'] = _sample_iou(r['inter'], r['union'])
            entry['segmentation'] = r['pred_rle']
            entries.append(entry)
        dump_json_atomic(entries, self.dump_rle)
        print_log(
            f'wrote {len(entries)} predicted masks (RLE) to {self.dump_rle}',
            logger='current')


def _format_table(header: List[str], rows: List[List[str]]) -> List[str]:
    """Plain-text table lines with aligned columns."""
    widths = [
        max(len(str(row[i])) for row in [header] + rows)
        for i in range(len(header))
    ]

    def fmt(row):
        return '| ' + ' | '.join(
            str(c).ljust(w) for c, w in zip(row, widths)) + ' |'

    sep = '|' + '|'.join('-' * (w + 2) for w in widths) + '|'
    return [fmt(header), sep] + [fmt(row) for row in rows]
