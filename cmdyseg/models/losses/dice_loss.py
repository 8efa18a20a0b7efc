# Copyright (c) cmdyseg contributors. All rights reserved.
from typing import Optional

from torch import Tensor

from cmdyseg.registry import MODELS
from .base_loss import BaseMaskLoss


@MODELS.register_module()
class DiceLoss(BaseMaskLoss):
    """Dice loss of a sigmoid mask, per sample then averaged:
    ``1 - (2 sum(p y) + eps) / (sum(p^e) + sum(y^e) + eps)`` with
    ``p = sigmoid(logits)`` over the sample's (valid) pixels (V-Net's form
    with ``exponent=2``; ``exponent=1`` is the plain soft Dice that
    referring-segmentation models such as MTTR and ReferFormer combine with
    a focal loss).

    ``forward(logits (B, 1, H, W), target (B, 1, H, W) in {0, 1},
    valid=None) -> scalar``, times ``loss_weight``.

    Args:
        exponent (float): e above. Defaults to 1.
        eps (float): Smoothing; an empty prediction of an empty target costs
            0. Defaults to 1.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to ``'loss_dice'``.
    """

    def __init__(self,
                 exponent: float = 1.0,
                 eps: float = 1.0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_dice'):
        super().__init__(loss_weight, loss_name)
        if eps <= 0:
            raise ValueError(f'DiceLoss: eps={eps!r} must be > 0')
        self.exponent = float(exponent)
        self.eps = float(eps)

    def compute(self, logits: Tensor, target: Tensor,
                valid: Optional[Tensor]) -> Tensor:
        prob = logits.sigmoid()
        if valid is not None:
            valid = valid.to(prob.dtype)
            prob = prob * valid
            target = target * valid
        prob, target = prob.flatten(1), target.flatten(1)
        inter = (prob * target).sum(1)
        union = prob.pow(self.exponent).sum(1) + \
            target.pow(self.exponent).sum(1)
        dice = (2 * inter + self.eps) / (union + self.eps)
        return (1 - dice).mean()
