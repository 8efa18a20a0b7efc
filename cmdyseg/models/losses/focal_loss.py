# Copyright (c) cmdyseg contributors. All rights reserved.
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from cmdyseg.registry import MODELS
from .base_loss import BaseMaskLoss, mean_over_valid


@MODELS.register_module()
class SigmoidFocalLoss(BaseMaskLoss):
    """Sigmoid focal loss (Lin et al. 2017) of a binary mask:
    ``-alpha_t (1 - p_t)^gamma log(p_t)`` per pixel, averaged over the
    (valid) pixels. Pure PyTorch, so it runs wherever the model does (no
    compiled op needed).

    ``forward(logits (B, 1, H, W), target (B, 1, H, W) in {0, 1},
    valid=None) -> scalar``, times ``loss_weight``.

    Args:
        gamma (float): Focusing parameter. Defaults to 2.
        alpha (float | None): Weight of the foreground in [0, 1] (the
            background gets ``1 - alpha``); None weighs both alike.
            Defaults to 0.25.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to ``'loss_focal'``.
    """

    def __init__(self,
                 gamma: float = 2.0,
                 alpha: Optional[float] = 0.25,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_focal'):
        super().__init__(loss_weight, loss_name)
        if gamma < 0:
            raise ValueError(f'SigmoidFocalLoss: gamma={gamma!r} must be '
                             '>= 0')
        if alpha is not None and not 0 <= alpha <= 1:
            raise ValueError(f'SigmoidFocalLoss: alpha={alpha!r} must be in '
                             '[0, 1] or None')
        self.gamma = float(gamma)
        self.alpha = alpha

    def compute(self, logits: Tensor, target: Tensor,
                valid: Optional[Tensor]) -> Tensor:
        prob = logits.sigmoid()
        ce = F.binary_cross_entropy_with_logits(
            logits, target, reduction='none')
        p_t = prob * target + (1 - prob) * (1 - target)
        loss = ce * (1 - p_t).pow(self.gamma)
        if self.alpha is not None:
            loss = loss * (self.alpha * target + (1 - self.alpha) *
                           (1 - target))
        return mean_over_valid(loss, valid)
