# Copyright (c) cmdyseg contributors. All rights reserved.
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from cmdyseg.registry import MODELS
from .base_loss import BaseMaskLoss, mean_over_valid


def weighted_bce_loss(logits: Tensor,
                      target: Tensor,
                      fg_weight: float = 1.5,
                      valid: Optional[Tensor] = None) -> Tensor:
    """Eq. 16: ``-lambda Y log s(R) - (1 - Y) log(1 - s(R))``, averaged
    over the (valid) pixels of all samples.

    Args:
        logits (Tensor): R^L, (B, 1, H, W), already at the label size.
        target (Tensor): Y in {0, 1}, (B, 1, H, W).
        fg_weight (float): lambda, the weight of foreground pixels.
        valid (Tensor, optional): (B, 1, H, W) bool, pixels that count
            (e.g. not mmseg's ``ignore_index``); all by default.
    """
    target = target.to(logits.dtype)
    weight = 1.0 + (fg_weight - 1.0) * target
    loss = F.binary_cross_entropy_with_logits(
        logits, target, weight=weight, reduction='none')
    return mean_over_valid(loss, valid)


@MODELS.register_module()
class WeightedBCELoss(BaseMaskLoss):
    """The paper's loss (eq. 16): binary cross-entropy whose foreground
    pixels weigh ``fg_weight`` (lambda = 1.5 in the paper).

    ``forward(logits (B, 1, H, W), target (B, 1, H, W) in {0, 1},
    valid=None) -> scalar``, times ``loss_weight``.

    Args:
        fg_weight (float): lambda. Defaults to 1.5.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Key of the loss in the heads' loss dict; it must
            contain ``'loss'``. Defaults to ``'loss_mask'``.
    """

    def __init__(self,
                 fg_weight: float = 1.5,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_mask'):
        super().__init__(loss_weight, loss_name)
        if not isinstance(fg_weight, (int, float)) or fg_weight <= 0:
            raise ValueError(f'WeightedBCELoss: fg_weight={fg_weight!r} must '
                             'be a positive number')
        self.fg_weight = float(fg_weight)

    def compute(self, logits: Tensor, target: Tensor,
                valid: Optional[Tensor]) -> Tensor:
        return weighted_bce_loss(logits, target, self.fg_weight, valid)
