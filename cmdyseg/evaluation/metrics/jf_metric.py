# Copyright (c) cmdyseg contributors. All rights reserved.
"""J, F and J&F of referring video object segmentation.

The protocol of today's benchmarks (MeViS, Ref-YouTube-VOS, Ref-DAVIS17):
per frame, region similarity J and DAVIS 2017 boundary F-measure F
(:mod:`cmdyseg.evaluation.functional.jf`); each averaged over the frames of
one (video, expression), then over expressions; J&F = (J + F) / 2.

Ref-DAVIS17 comes with four annotation sets (two annotators, first-frame
and full-video expressions). ReferFormer evaluates each set on its own and
reports the mean of the four results; :class:`JFMetric` does so with
``average_annotation_sets=True`` (samples then carry ``anno_set``), and
:func:`cmdyseg.evaluation.functional.average_over_annotation_sets` does it
for results computed separately.
"""
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement, PixelData
from pycocotools import mask as mask_utils

from cmdyseg.evaluation.functional import (aggregate_jf,
                                           average_over_annotation_sets,
                                           boundary_f, jaccard)
from cmdyseg.registry import METRICS
from cmdyseg.utils.errors import InvalidInputError


def _get(sample: Any, key: str) -> Any:
    """``key`` of a data element or of its ``to_dict()`` (or a plain dict,
    where metainfo may sit at the top level or under ``'metainfo'``)."""
    if isinstance(sample, dict):
        if key in sample:
            return sample[key]
        return sample.get('metainfo', {}).get(key)
    if isinstance(sample, BaseDataElement):
        return sample.get(key)
    raise TypeError('data samples must be data elements or dicts, got '
                    f'{type(sample).__name__}')


def _is_rle_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(v, dict) and 'counts' in v and 'size' in v for v in value)


def _masks(value: Any, key: str, name: str) -> np.ndarray:
    """(T, H, W) bool stack from an array, tensor, PixelData or its dict,
    or a list of per-frame COCO RLEs."""
    if value is None:
        if key == 'gt_masks':
            raise InvalidInputError(
                f'{name}: no ground-truth masks, so J&F cannot be computed '
                '(a split without public masks, e.g. Ref-YouTube-VOS or '
                'MeViS valid): write the submission files instead with '
                'tools/test.py CONFIG CHECKPOINT --format-only --out DIR')
        raise KeyError(f'{name}: data sample has no "{key}"')
    if _is_rle_list(value):
        return np.stack([mask_utils.decode(r) for r in value]) != 0
    if isinstance(value, PixelData):
        value = value.data
    elif isinstance(value, dict):
        if 'data' not in value:
            raise KeyError(f'{name}: "{key}" dict has no "data"')
        value = value['data']
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim == 2:  # a single frame
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f'{name}: "{key}" must be (T, H, W) or (H, W), got '
                         f'shape {tuple(arr.shape)}')
    if np.issubdtype(arr.dtype, np.floating) and not np.all((arr == 0)
                                                            | (arr == 1)):
        # A score map is not a mask; thresholding is the model's job.
        raise ValueError(f'{name}: "{key}" holds values other than 0 and 1; '
                         'threshold it before the metric')
    return arr != 0


@METRICS.register_module()
class JFMetric(BaseMetric):
    """Region similarity J, boundary F-measure F and J&F, in percent.

    Each processed sample is one (video, expression) and must carry, at the
    frames' original size:

    - ``pred_masks``: predicted masks (T, H, W) (uint8 / bool / integer,
      non-zero = foreground; float only if it holds 0 and 1), as an array,
      tensor, :obj:`PixelData` or a dict with ``data``; (H, W) is one
      frame; or a list of T COCO RLEs (what
      :class:`cmdyseg.engine.ReferVideoTestLoop` gives),
    - ``gt_masks``: the ground truth of the same T frames, same shape,
    - metainfo ``video_id`` and ``exp_id`` (identify the expression),
    - optionally ``category`` (e.g. MeViS / Ref-YouTube-VOS object class)
      for the per-category breakdown, and ``anno_set`` (Ref-DAVIS17
      annotation set) for ``average_annotation_sets``.

    Samples may be data elements or dicts (e.g. their ``to_dict()``). Only
    the per-frame J and F values are kept, as one result per ``process``
    call: :class:`cmdyseg.engine.ReferVideoTestLoop` calls it once per
    video, so that every rank holds one result per dataset sample, as
    mmengine's distributed collection expects.

    Reported (percent): ``J``, ``F``, ``J&F`` -- per-frame values averaged
    over the frames of each expression, then over expressions -- and, with
    ``breakdown``, ``<category>/J``, ``<category>/F``, ``<category>/J&F``.

    Args:
        bound_th (float): boundary tolerance of F, as a fraction of the
            image diagonal (< 1) or in pixels (>= 1). Defaults to 0.008
            (DAVIS).
        breakdown (bool): report per-category entries for samples with a
            ``category``. Defaults to True.
        average_annotation_sets (bool): Ref-DAVIS17 protocol (ReferFormer):
            compute the results of each ``anno_set`` separately and report
            their key-by-key mean. Defaults to False.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): prefix of the metric names. Defaults to
            ``'jf'``.
        collect_dir (str, optional): folder to collect results across
            ranks with ``collect_device='cpu'``. Defaults to None.
    """
    default_prefix: Optional[str] = 'jf'

    def __init__(self,
                 bound_th: float = 0.008,
                 breakdown: bool = True,
                 average_annotation_sets: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        if bound_th < 0:
            raise ValueError(f'bound_th must be >= 0, got {bound_th}')
        self.bound_th = bound_th
        self.breakdown = breakdown
        self.average_annotation_sets = average_annotation_sets

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Compute per-frame J and F of each (video, expression) sample.

        Args:
            data_batch: unused (the masks travel in the data samples).
            data_samples: see the class docstring for the fields read.
        """
        records = []
        for sample in data_samples:
            video_id, exp_id = _get(sample, 'video_id'), _get(sample, 'exp_id')
            name = f'sample (video_id={video_id!r}, exp_id={exp_id!r})'
            if video_id is None or exp_id is None:
                raise KeyError(f'{name}: video_id and exp_id are required')
            pred = _masks(_get(sample, 'pred_masks'), 'pred_masks', name)
            gt = _masks(_get(sample, 'gt_masks'), 'gt_masks', name)
            if pred.shape != gt.shape:
                raise ValueError(
                    f'{name}: pred_masks {tuple(pred.shape)} and gt_masks '
                    f'{tuple(gt.shape)} differ; predict every annotated '
                    'frame at its original size')
            anno_set = _get(sample, 'anno_set')
            if self.average_annotation_sets and anno_set is None:
                raise KeyError(f'{name}: average_annotation_sets needs '
                               '"anno_set"')
            records.append(
                dict(
                    video_id=video_id,
                    exp_id=exp_id,
                    category=_get(sample, 'category'),
                    anno_set=anno_set,
                    j=jaccard(pred, gt).tolist(),
                    f=boundary_f(pred, gt, self.bound_th).tolist()))
        self.results.append(records)

    def _one_set(self, results: List[dict]) -> Dict[str, float]:
        records = [(r['video_id'], r['exp_id'], r['j'], r['f'],
                    r['category']) for r in results]
        scores = aggregate_jf(
            records, by='category' if self.breakdown else None)
        return OrderedDict((k, 100.0 * v) for k, v in scores.items())

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """J, F, J&F (percent) and the optional per-category entries."""
        # one list per process call (see the class docstring)
        results = [r for call in results for r in call]
        if not results:
            raise ValueError('JFMetric got no results')
        if not self.average_annotation_sets:
            return self._one_set(results)
        sets: Dict[Any, List[dict]] = OrderedDict()
        for r in results:
            sets.setdefault(r['anno_set'], []).append(r)
        return average_over_annotation_sets(
            [self._one_set(rs) for rs in sets.values()])
