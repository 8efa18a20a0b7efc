# Copyright (c) cmdyseg contributors. All rights reserved.
"""The registered mask losses against values computed by hand."""
import math

import pytest
import torch

import cmdyseg.models  # noqa: F401  (registers the losses)
from cmdyseg.models.losses import (DiceLoss, SigmoidFocalLoss, WeightedBCELoss,
                                   weighted_bce_loss)
from cmdyseg.registry import MODELS


def _sig(x):
    return 1 / (1 + math.exp(-x))


# one sample, 1 x 2 x 2: logits and a target with one foreground pixel
LOGITS = [[0.0, 2.0], [-1.0, 0.5]]
TARGET = [[1, 0], [0, 0]]


def _pair():
    return (torch.tensor(LOGITS).view(1, 1, 2, 2),
            torch.tensor(TARGET, dtype=torch.uint8).view(1, 1, 2, 2))


def _pixels():
    return [(LOGITS[i][j], TARGET[i][j]) for i in range(2)
            for j in range(2)]


def test_weighted_bce_is_eq16_by_hand():
    logits, target = _pair()
    lam = 1.5
    by_hand = sum(-lam * y * math.log(_sig(x)) -
                  (1 - y) * math.log(1 - _sig(x))
                  for x, y in _pixels()) / 4
    loss = WeightedBCELoss(fg_weight=lam, loss_weight=2.0)
    assert loss.loss_name == 'loss_mask'
    assert loss(logits, target).item() == pytest.approx(2 * by_hand,
                                                        rel=1e-6)
    assert weighted_bce_loss(logits, target, lam).item() == pytest.approx(
        by_hand, rel=1e-6)
    # lambda = 1 is the plain BCE, and lambda matters
    plain = sum(-y * math.log(_sig(x)) - (1 - y) * math.log(1 - _sig(x))
                for x, y in _pixels()) / 4
    assert weighted_bce_loss(logits, target, 1.0).item() == pytest.approx(
        plain, rel=1e-6)
    assert plain != pytest.approx(by_hand)


def test_valid_pixels_only():
    logits, target = _pair()
    valid = torch.tensor([[True, False], [True, False]]).view(1, 1, 2, 2)
    kept = [(LOGITS[0][0], 1), (LOGITS[1][0], 0)]
    by_hand = sum(-1.5 * y * math.log(_sig(x)) -
                  (1 - y) * math.log(1 - _sig(x)) for x, y in kept) / 2
    assert WeightedBCELoss()(logits, target, valid).item() == \
        pytest.approx(by_hand, rel=1e-6)
    # no valid pixel: 0, not NaN, and still differentiable
    logits.requires_grad_(True)
    none = WeightedBCELoss()(logits, target, torch.zeros_like(valid))
    none.backward()
    assert none.item() == 0 and torch.isfinite(logits.grad).all()


def test_dice_by_hand():
    logits, target = _pair()
    p = [_sig(x) for x, _ in _pixels()]
    y = [t for _, t in _pixels()]
    inter = sum(a * b for a, b in zip(p, y))
    for exponent in (1, 2):
        union = sum(a**exponent for a in p) + sum(b**exponent for b in y)
        by_hand = 1 - (2 * inter + 1) / (union + 1)
        loss = DiceLoss(exponent=exponent, loss_weight=0.5)
        assert loss(logits, target).item() == pytest.approx(
            0.5 * by_hand, rel=1e-6)
    # a perfect, confident prediction costs (almost) nothing
    sure = (target.float() * 40 - 20)
    assert DiceLoss()(sure, target).item() < 1e-6


def test_dice_is_per_sample():
    a = torch.full((1, 1, 2, 2), 10.0)
    empty = torch.zeros(1, 1, 2, 2)
    full = torch.ones(1, 1, 2, 2)
    both = DiceLoss()(torch.cat([a, a]), torch.cat([full, empty])).item()
    one = DiceLoss()(a, full).item()
    other = DiceLoss()(a, empty).item()
    assert both == pytest.approx((one + other) / 2, rel=1e-6)


@pytest.mark.parametrize('alpha', [0.25, None])
def test_focal_by_hand(alpha):
    logits, target = _pair()
    gamma = 2.0
    total = 0.0
    for x, y in _pixels():
        p = _sig(x)
        p_t = p if y else 1 - p
        a_t = 1.0 if alpha is None else (alpha if y else 1 - alpha)
        total += -a_t * (1 - p_t)**gamma * math.log(p_t)
    loss = SigmoidFocalLoss(gamma=gamma, alpha=alpha)
    assert loss.loss_name == 'loss_focal'
    assert loss(logits, target).item() == pytest.approx(total / 4, rel=1e-6)


def test_losses_build_from_registry_and_check_arguments():
    for cfg in (dict(type='WeightedBCELoss', fg_weight=2.0),
                dict(type='DiceLoss'), dict(type='SigmoidFocalLoss')):
        assert MODELS.build(cfg).loss_weight == 1.0
    with pytest.raises(ValueError, match="must be a str that contains 'lo"):
        WeightedBCELoss(loss_name='mask')
    with pytest.raises(ValueError, match='loss_weight'):
        DiceLoss(loss_weight=-1)
    with pytest.raises(ValueError, match='fg_weight'):
        WeightedBCELoss(fg_weight=0)
    logits, target = _pair()
    with pytest.raises(ValueError, match='same shape'):
        DiceLoss()(logits, target[..., :1])
