# Copyright (c) cmdyseg contributors. All rights reserved.
from .base_loss import BaseMaskLoss
from .dice_loss import DiceLoss
from .focal_loss import SigmoidFocalLoss
from .weighted_bce_loss import WeightedBCELoss, weighted_bce_loss

__all__ = ['BaseMaskLoss', 'WeightedBCELoss', 'weighted_bce_loss', 'DiceLoss',
           'SigmoidFocalLoss']
