# Copyright (c) cmdyseg contributors. All rights reserved.
"""J / F functions against values counted by hand."""
import numpy as np
import pytest

from cmdyseg.evaluation.functional import (aggregate_jf,
                                           average_over_annotation_sets,
                                           bound_pixels, boundary_f,
                                           boundary_precision_recall, disk,
                                           j_and_f, jaccard, seg2bmap)


def square(size, r0, c0, side, dtype=np.uint8):
    m = np.zeros((size, size), dtype=dtype)
    m[r0:r0 + side, c0:c0 + side] = 1
    return m


# ----------------------------------------------------------------- jaccard
def test_jaccard_counts():
    pred = square(6, 1, 1, 2)  # 4 px
    gt = square(6, 1, 2, 2)  # 4 px, 2 shared -> union 6
    assert jaccard(pred, gt) == pytest.approx(2 / 6)
    # 3x3 contains the 2x2: 4 / 9; any non-zero value is foreground
    assert jaccard(pred * 255, square(6, 1, 1, 3, bool)) == pytest.approx(
        4 / 9)


def test_jaccard_empty():
    empty = np.zeros((5, 5), np.uint8)
    assert jaccard(empty, empty) == 1.0
    assert jaccard(empty, square(5, 0, 0, 2)) == 0.0
    assert jaccard(square(5, 0, 0, 2), empty) == 0.0


def test_jaccard_stack():
    pred = np.stack([square(6, 1, 1, 2), np.zeros((6, 6)), square(6, 0, 0, 1)])
    gt = np.stack([square(6, 1, 2, 2), np.zeros((6, 6)), square(6, 5, 5, 1)])
    out = jaccard(pred, gt)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [2 / 6, 1.0, 0.0])
    with pytest.raises(ValueError):
        jaccard(pred, gt[:2])


# ---------------------------------------------------------------- seg2bmap
def test_seg2bmap_interior_square():
    m = np.zeros((4, 4), np.uint8)
    m[1:3, 1:3] = 1
    expected = np.array([
        [1, 1, 1, 0],
        [1, 0, 1, 0],
        [1, 1, 1, 0],
        [0, 0, 0, 0],
    ], bool)
    np.testing.assert_array_equal(seg2bmap(m), expected)


def test_seg2bmap_touching_last_row_and_column():
    # Foreground in the bottom-right corner: the border makes no boundary,
    # so the last row / column only hold changes along them.
    m = np.zeros((4, 4), np.uint8)
    m[2:, 2:] = 1
    expected = np.array([
        [0, 0, 0, 0],
        [0, 1, 1, 1],
        [0, 1, 0, 0],
        [0, 1, 0, 0],
    ], bool)
    np.testing.assert_array_equal(seg2bmap(m), expected)
    # A vertical change inside the last column and a horizontal one inside
    # the last row are boundaries; the bottom-right pixel never is.
    m = np.zeros((3, 3), np.uint8)
    m[0, 2] = 1
    m[2, 0] = 1
    expected = np.array([
        [0, 1, 1],
        [1, 0, 0],
        [1, 0, 0],
    ], bool)
    np.testing.assert_array_equal(seg2bmap(m), expected)


def _bmap_zero_pad_then_overwrite(seg):
    """Independent formulation of the DAVIS description: compare with the
    zero-padded right / bottom / bottom-right neighbours, then redo the last
    row (right neighbour only), last column (bottom only), corner = 0."""
    seg = seg != 0
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def test_seg2bmap_matches_overwrite_formulation():
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (1, 5), (5, 1), (7, 9), (16, 11)]:
        for _ in range(5):
            m = rng.random(shape) < 0.5
            np.testing.assert_array_equal(
                seg2bmap(m), _bmap_zero_pad_then_overwrite(m))


def test_full_and_empty_have_no_boundary():
    assert not seg2bmap(np.ones((5, 6))).any()
    assert not seg2bmap(np.zeros((5, 6))).any()


# -------------------------------------------------------------- boundary F
def test_disk():
    np.testing.assert_array_equal(disk(0), [[1]])
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    d2 = disk(2)
    assert d2.shape == (5, 5)
    # (2, 1) -> 4 + 1 = 5 > 4 is outside; (1, 1) -> 2 <= 4 is inside
    assert d2[0, 1] == 0 and d2[1, 1] == 1 and d2[0, 2] == 1
    assert d2.sum() == 13


def test_bound_pixels():
    # 100x100: 0.008 * 141.42 = 1.131 -> 2
    assert bound_pixels((100, 100), 0.008) == 2
    # 480x854 (DAVIS): 0.008 * 979.6 = 7.84 -> 8
    assert bound_pixels((480, 854), 0.008) == 8
    assert bound_pixels((100, 100), 0) == 0
    assert bound_pixels((100, 100), 1) == 1
    assert bound_pixels((100, 100), 3) == 3


def test_boundary_f_identical():
    m = square(10, 2, 3, 4)
    assert boundary_f(m, m) == 1.0
    assert boundary_f(m, m, bound_th=0) == 1.0


def test_boundary_f_shift_radius_zero():
    # 6x6, 2x2 at (1,1) vs shifted to (1,2). Boundaries (8 px each):
    #  pred: rows 0-2 x cols 0-2 minus (1,1); gt: rows 0-2 x cols 1-3 minus
    #  (1,2). Shared: (0,1) (0,2) (2,1) (2,2) -> P = R = 4/8, F = 1/2.
    pred, gt = square(6, 1, 1, 2), square(6, 1, 2, 2)
    p, r = boundary_precision_recall(pred, gt, bound_th=0)
    assert (p, r) == (0.5, 0.5)
    assert boundary_f(pred, gt, bound_th=0) == pytest.approx(0.5)


def test_boundary_f_shift_one_pixel_tolerance():
    # Every boundary pixel of one square is 4-adjacent to the other's.
    pred, gt = square(6, 1, 1, 2), square(6, 1, 2, 2)
    assert boundary_f(pred, gt, bound_th=1) == 1.0


def test_boundary_f_asymmetric_radius_zero():
    # 2x2 at (1,1) vs 3x3 at (1,1) in 6x6. gt boundary (12 px): row 0 cols
    # 0-3, (1,0) (1,3) (2,0) (2,3), row 3 cols 0-3. pred boundary (8 px)
    # shares (0,0) (0,1) (0,2) (1,0) (2,0) -> P = 5/8, R = 5/12, F = 1/2.
    pred, gt = square(6, 1, 1, 2), square(6, 1, 1, 3)
    p, r = boundary_precision_recall(pred, gt, bound_th=0)
    assert p == pytest.approx(5 / 8)
    assert r == pytest.approx(5 / 12)
    f = 2 * (5 / 8) * (5 / 12) / (5 / 8 + 5 / 12)
    assert boundary_f(pred, gt, bound_th=0) == pytest.approx(f)
    # swapping the roles swaps precision and recall
    assert boundary_precision_recall(gt, pred, bound_th=0) == pytest.approx(
        (5 / 12, 5 / 8))


def test_boundary_f_diagonal_tolerance():
    # 100x100, bound_th=0.008 -> radius 2: a 2 px shift is within, 3 px not
    # for the boundary pixels along the shifted sides.
    gt = square(100, 20, 20, 40)
    assert boundary_f(square(100, 20, 22, 40), gt) == 1.0
    assert boundary_f(square(100, 20, 23, 40), gt) < 1.0
    assert boundary_f(square(100, 20, 23, 40), gt, bound_th=3) == 1.0


def test_boundary_f_empty_cases():
    empty = np.zeros((6, 6), np.uint8)
    sq = square(6, 1, 1, 2)
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(empty, sq) == 0.0
    assert boundary_f(sq, empty) == 0.0
    assert boundary_precision_recall(empty, sq) == (1.0, 0.0)
    assert boundary_precision_recall(sq, empty) == (0.0, 1.0)
    # DAVIS quirk: a full-frame mask has no boundary either
    assert boundary_f(np.ones((6, 6)), empty) == 1.0


def test_boundary_f_stack():
    pred = np.stack([square(6, 1, 1, 2), square(6, 1, 1, 2)])
    gt = np.stack([square(6, 1, 2, 2), np.zeros((6, 6))])
    out = boundary_f(pred, gt, bound_th=0)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [0.5, 0.0])


# ------------------------------------------------------------- aggregation
def test_j_and_f():
    assert j_and_f(0.5, 0.7) == pytest.approx(0.6)
    np.testing.assert_allclose(
        j_and_f(np.array([1.0, 0.0]), np.array([0.0, 0.5])), [0.5, 0.25])


RECORDS = [
    # video, expression, per-frame J, per-frame F, category
    ('v1', 'e1', [1.0, 0.0], [0.5, 0.5], 'cat'),
    ('v1', 'e2', [1.0, 1.0, 1.0, 1.0], [0.25] * 4, 'dog'),
    ('v2', 'e1', [0.2], [0.9], 'cat'),
]


def test_aggregate_jf_expression_then_mean():
    out = aggregate_jf(RECORDS)
    # per-expression J: 0.5, 1.0, 0.2 -> 1.7 / 3 (pooling the 7 frames
    # would give 5.2 / 7 = 0.743); per-expression F: 0.5, 0.25, 0.9
    assert out['J'] == pytest.approx(1.7 / 3)
    assert out['F'] == pytest.approx(1.65 / 3)
    assert out['J&F'] == pytest.approx(3.35 / 6)
    assert out['J'] != pytest.approx(5.2 / 7)
    assert out['cat/J'] == pytest.approx(0.35)
    assert out['cat/F'] == pytest.approx(0.7)
    assert out['cat/J&F'] == pytest.approx(0.525)
    assert out['dog/J'] == pytest.approx(1.0)
    assert out['dog/F'] == pytest.approx(0.25)
    assert out['dog/J&F'] == pytest.approx(0.625)


def test_aggregate_jf_no_breakdown_and_no_category():
    out = aggregate_jf(RECORDS, by=None)
    assert list(out) == ['J', 'F', 'J&F']
    out = aggregate_jf([r[:4] for r in RECORDS])
    assert list(out) == ['J', 'F', 'J&F']
    assert out['J'] == pytest.approx(1.7 / 3)


def test_aggregate_jf_same_key_merged():
    # v1/e1 split into two records is one expression of 2 frames
    split = [('v1', 'e1', [1.0], [0.5]), ('v1', 'e1', [0.0], [0.5]),
             ('v2', 'e1', [0.2], [0.9])]
    out = aggregate_jf(split)
    assert out['J'] == pytest.approx((0.5 + 0.2) / 2)


def test_aggregate_jf_errors():
    with pytest.raises(ValueError):
        aggregate_jf([])
    with pytest.raises(ValueError):
        aggregate_jf([('v', 'e', [1.0, 0.5], [1.0])])
    with pytest.raises(ValueError):
        aggregate_jf(RECORDS, by='video')


def test_average_over_annotation_sets():
    sets = [dict(J=0.4, F=0.6, **{'J&F': 0.5}),
            dict(J=0.6, F=0.8, **{'J&F': 0.7}, extra=1.0)]
    out = average_over_annotation_sets(sets)
    assert out == pytest.approx({'J': 0.5, 'F': 0.7, 'J&F': 0.6})
    assert 'extra' not in out
