# Copyright (c) cmdyseg contributors. All rights reserved.
"""What every mask loss shares: the loss weight and name, the input checks
and the reduction over valid pixels."""
from typing import Optional

import torch.nn as nn
from torch import Tensor


class BaseMaskLoss(nn.Module):
    """A loss between mask logits and a binary target, as a head's
    ``loss_decode`` entry (mmseg's contract: ``loss_weight``,
    ``loss_name``).

    ``forward(logits (B, 1, H, W), target (B, 1, H, W) in {0, 1},
    valid=None) -> scalar``: ``loss_weight`` times :meth:`compute`.
    ``valid`` (B, 1, H, W) bool marks the pixels that count (e.g. not
    mmseg's ``ignore_index``); all pixels by default.

    Args:
        loss_weight (float): Multiplier of the loss (>= 0).
        loss_name (str): Key of the loss in the head's loss dict. It must
            contain ``'loss'``: mmengine sums only those entries.
    """

    def __init__(self, loss_weight: float, loss_name: str):
        super().__init__()
        name = type(self).__name__
        if not isinstance(loss_weight, (int, float)) or loss_weight < 0:
            raise ValueError(f'{name}: loss_weight={loss_weight!r} must be a '
                             'number >= 0')
        if not isinstance(loss_name, str) or 'loss' not in loss_name:
            raise ValueError(f"{name}: loss_name={loss_name!r} must be a str "
                             "that contains 'loss' (mmengine sums only those "
                             'entries of the loss dict)')
        self.loss_weight = float(loss_weight)
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def compute(self, logits: Tensor, target: Tensor,
                valid: Optional[Tensor]) -> Tensor:
        """The unweighted loss; ``target`` is float, like ``logits``."""
        raise NotImplementedError

    def forward(self,
                logits: Tensor,
                target: Tensor,
                valid: Optional[Tensor] = None) -> Tensor:
        name = type(self).__name__
        if logits.shape != target.shape:
            raise ValueError(
                f'{name}: logits {tuple(logits.shape)} and target '
                f'{tuple(target.shape)} must have the same shape (resize the '
                'logits to the label size first)')
        if valid is not None and valid.shape != target.shape:
            raise ValueError(f'{name}: valid {tuple(valid.shape)} must have '
                             f'the target shape {tuple(target.shape)}')
        target = target.to(logits.dtype)
        return self.loss_weight * self.compute(logits, target, valid)


def mean_over_valid(loss: Tensor, valid: Optional[Tensor]) -> Tensor:
    """Mean of a per-pixel loss over the valid pixels (all by default). No
    valid pixel gives 0 (keeping the graph), not NaN."""
    if valid is None:
        return loss.mean()
    valid = valid.to(loss.dtype)
    return (loss * valid).sum() / valid.sum().clamp(min=1)
