# Copyright (c) cmdyseg contributors. All rights reserved.
"""Region similarity J and boundary accuracy F (DAVIS 2017 definitions).

Both are computed on binary masks (any dtype, non-zero = foreground) at the
mask's own resolution:

- ``J`` (:func:`jaccard`) = |P & G| / |P | G|, 1 when both are empty.
- ``F`` (:func:`boundary_f`) = F-measure of the boundary pixels of P and G,
  a boundary pixel counting as matched when it lies within ``bound_pix`` of
  the other mask's boundary.

Benchmarks (MeViS, Ref-YouTube-VOS, Ref-DAVIS17) average J and F over the
frames of each (video, expression) and then over expressions, and report
``J&F = (J + F) / 2`` (:func:`aggregate_jf`).
"""
import math
from collections import OrderedDict
from typing import Dict, Iterable, Optional, Sequence, Union

import cv2
import numpy as np

ArrayOrFloat = Union[float, np.ndarray]


def _as_bool(mask) -> np.ndarray:
    """Binary view of a mask: non-zero is foreground, whatever the dtype."""
    return np.asarray(mask) != 0


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt shapes differ: {pred.shape} vs '
                         f'{gt.shape}')
    if pred.ndim not in (2, 3):
        raise ValueError('masks must be (H, W) or a stack (T, H, W), got '
                         f'shape {pred.shape}')


def jaccard(pred, gt) -> ArrayOrFloat:
    """Region similarity J = |P & G| / |P | G| of binary masks.

    Args:
        pred: predicted mask (H, W), or a stack (T, H, W).
        gt: ground-truth mask of the same shape.

    Returns:
        float for (H, W) inputs, a float64 array (T,) for stacks. Two empty
        masks agree perfectly (1.0); one empty and one not gives 0.0.
    """
    pred, gt = _as_bool(pred), _as_bool(gt)
    _check_pair(pred, gt)
    if pred.ndim == 3:
        return np.array([jaccard(p, g) for p, g in zip(pred, gt)],
                        dtype=np.float64)
    union = int(np.count_nonzero(pred | gt))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(pred & gt)) / union


def seg2bmap(mask) -> np.ndarray:
    """Boundary map (H, W) bool of a binary mask (H, W), on its own grid.

    A pixel is on the boundary when it differs from its right, bottom or
    bottom-right neighbour. Outside the image the mask is taken to repeat
    its last row / column (edge padding), i.e. the image border itself
    creates no boundary: a pixel of the last column is compared with its
    bottom neighbour only, one of the last row with its right neighbour
    only, and the bottom-right pixel is never a boundary pixel. This is
    what the DAVIS ``seg2bmap`` does at the last row / column (it overwrites
    them with exactly these comparisons), so foreground touching the right
    or bottom border gets no boundary along that border, like foreground
    touching the left or top border.
    """
    seg = _as_bool(mask)
    if seg.ndim != 2:
        raise ValueError(f'seg2bmap expects (H, W), got shape {seg.shape}')
    padded = np.pad(seg, ((0, 1), (0, 1)), mode='edge')
    right = padded[:-1, 1:]
    bottom = padded[1:, :-1]
    bottom_right = padded[1:, 1:]
    return (seg != right) | (seg != bottom) | (seg != bottom_right)


def disk(radius: int) -> np.ndarray:
    """Disk structuring element (2r+1, 2r+1) uint8: dx^2 + dy^2 <= r^2."""
    radius = int(radius)
    if radius < 0:
        raise ValueError(f'radius must be >= 0, got {radius}')
    d = np.arange(-radius, radius + 1)
    return ((d[:, None]**2 + d[None, :]**2) <= radius**2).astype(np.uint8)


def bound_pixels(shape: Sequence[int], bound_th: float = 0.008) -> int:
    """Tolerance radius in pixels of the boundary F-measure.

    ``bound_th < 1`` is a fraction of the image diagonal
    (``ceil(bound_th * sqrt(H^2 + W^2))``); ``bound_th >= 1`` is a number of
    pixels (rounded up, so that a tolerance is never made stricter).
    """
    if bound_th < 0:
        raise ValueError(f'bound_th must be >= 0, got {bound_th}')
    if bound_th >= 1:
        return int(math.ceil(bound_th))
    h, w = shape[-2:]
    return int(math.ceil(bound_th * math.hypot(h, w)))


def _dilate(bmap: np.ndarray, radius: int) -> np.ndarray:
    if radius == 0:
        return bmap
    # cv2.dilate ignores pixels outside the image (its default border value
    # for dilation is the minimum), so nothing is dilated in from outside.
    return cv2.dilate(bmap.astype(np.uint8), disk(radius)) != 0


def boundary_precision_recall(pred, gt, bound_th: float = 0.008) -> tuple:
    """(precision, recall) of the boundary of ``pred`` (H, W) against ``gt``.

    Precision is the share of P's boundary pixels within ``bound_pix`` (see
    :func:`bound_pixels`) of G's boundary, recall the share of G's boundary
    pixels within ``bound_pix`` of P's boundary, distances measured with a
    disk (dx^2 + dy^2 <= bound_pix^2). Both boundaries empty gives
    (1, 1); an empty P boundary on a non-empty G gives (1, 0), the reverse
    (0, 1), so that F is 0 when exactly one boundary is empty.
    """
    pred, gt = _as_bool(pred), _as_bool(gt)
    _check_pair(pred, gt)
    if pred.ndim != 2:
        raise ValueError(f'expects (H, W) masks, got shape {pred.shape}')
    radius = bound_pixels(pred.shape, bound_th)
    pred_b, gt_b = seg2bmap(pred), seg2bmap(gt)
    n_pred, n_gt = int(pred_b.sum()), int(gt_b.sum())
    if n_pred == 0 or n_gt == 0:
        return float(n_pred == 0), float(n_gt == 0)
    precision = int(np.count_nonzero(pred_b & _dilate(gt_b, radius))) / n_pred
    recall = int(np.count_nonzero(gt_b & _dilate(pred_b, radius))) / n_gt
    return precision, recall


def boundary_f(pred, gt, bound_th: float = 0.008) -> ArrayOrFloat:
    """DAVIS 2017 boundary F-measure of binary masks.

    F = 2PR / (P + R) of the boundary precision P and recall R (see
    :func:`boundary_precision_recall`), 0 when P + R = 0. Both boundaries
    empty gives 1.0, exactly one empty 0.0. Note that a mask covering the
    whole frame has no boundary (the image border makes none, see
    :func:`seg2bmap`), so it scores F = 1 against an empty mask, as in the
    DAVIS toolkit; J tells these apart.

    Args:
        pred: predicted mask (H, W), or a stack (T, H, W).
        gt: ground-truth mask of the same shape.
        bound_th (float): fraction of the diagonal (< 1) or pixels (>= 1).

    Returns:
        float for (H, W) inputs, a float64 array (T,) for stacks.
    """
    pred, gt = _as_bool(pred), _as_bool(gt)
    _check_pair(pred, gt)
    if pred.ndim == 3:
        return np.array(
            [boundary_f(p, g, bound_th) for p, g in zip(pred, gt)],
            dtype=np.float64)
    precision, recall = boundary_precision_recall(pred, gt, bound_th)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def j_and_f(j: ArrayOrFloat, f: ArrayOrFloat) -> ArrayOrFloat:
    """J&F = (J + F) / 2 (element-wise for arrays)."""
    if isinstance(j, np.ndarray) or isinstance(f, np.ndarray):
        return (np.asarray(j, dtype=np.float64) +
                np.asarray(f, dtype=np.float64)) / 2
    return (float(j) + float(f)) / 2


def _scores(js: Iterable[float], fs: Iterable[float]) -> Dict[str, float]:
    j, f = float(np.mean(list(js))), float(np.mean(list(fs)))
    return OrderedDict([('J', j), ('F', f), ('J&F', (j + f) / 2)])


def aggregate_jf(records: Sequence[Sequence],
                 by: Optional[str] = 'category') -> Dict[str, float]:
    """Benchmark J, F and J&F of per-frame scores (fractions in [0, 1]).

    Each record is ``(video, expression, j_frames, f_frames)`` or
    ``(video, expression, j_frames, f_frames, category)``. J and F are
    averaged over the frames of each (video, expression) first and then
    over expressions, so every expression weighs the same whatever its
    length (the MeViS / Ref-YouTube-VOS convention); J&F = (J + F) / 2 of
    those means. Records sharing a (video, expression) key are merged
    (their frames concatenated) before averaging.

    Args:
        records: the per-expression records.
        by (str, optional): ``'category'`` adds ``'<category>/J'``,
            ``'<category>/F'``, ``'<category>/J&F'`` over the expressions
            of each category (records without one are left out of the
            breakdown); ``None`` reports the overall scores only.

    Returns:
        OrderedDict with ``J``, ``F``, ``J&F`` (then the breakdown).
    """
    if by not in (None, 'category'):
        raise ValueError(f"by must be None or 'category', got {by!r}")
    if len(records) == 0:
        raise ValueError('aggregate_jf needs at least one record')
    frames: Dict[tuple, list] = OrderedDict()
    for rec in records:
        if len(rec) not in (4, 5):
            raise ValueError('records are (video, expression, J, F[, '
                             f'category]), got {len(rec)} fields')
        key = (rec[0], rec[1])
        category = rec[4] if len(rec) == 5 else None
        j = np.atleast_1d(np.asarray(rec[2], dtype=np.float64))
        f = np.atleast_1d(np.asarray(rec[3], dtype=np.float64))
        if j.shape != f.shape or j.size == 0:
            raise ValueError(f'{key}: J and F need the same non-zero number '
                             f'of frames, got {j.shape} and {f.shape}')
        entry = frames.setdefault(key, [[], [], category])
        entry[0].append(j)
        entry[1].append(f)
        if entry[2] is None:
            entry[2] = category
    per_exp = [(float(np.concatenate(j).mean()),
                float(np.concatenate(f).mean()), cat)
               for j, f, cat in frames.values()]
    results = _scores([e[0] for e in per_exp], [e[1] for e in per_exp])
    if by == 'category':
        cats = OrderedDict()
        for j, f, cat in per_exp:
            if cat is not None:
                cats.setdefault(cat, []).append((j, f))
        for cat, vals in cats.items():
            for name, value in _scores([v[0] for v in vals],
                                       [v[1] for v in vals]).items():
                results[f'{cat}/{name}'] = value
    return results


def average_over_annotation_sets(
        results: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """Mean of several result dicts, key by key (Ref-DAVIS17 protocol).

    Ref-DAVIS17 has four independent sets of referring expressions for the
    same videos; following ReferFormer, J, F and J&F are computed for each
    set separately and the four results averaged. Only keys present in
    every set are kept.
    """
    if len(results) == 0:
        raise ValueError('need at least one result dict')
    keys = [k for k in results[0] if all(k in r for r in results[1:])]
    return OrderedDict(
        (k, float(np.mean([r[k] for r in results]))) for k in keys)
