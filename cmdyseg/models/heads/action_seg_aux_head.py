# Copyright (c) cmdyseg contributors. All rights reserved.
"""An auxiliary head: every actor's action, per pixel, from F_V^M.

Not in the paper. A2D is an actor-action segmentation dataset: every
instance of an annotated frame carries an actor-action code, so the
annotation a referring model is trained on also says, for every pixel,
what the actor there is doing. Asking the video features to say it too is
a training signal for the cue a sentence such as "the square that rotates"
needs and one frame cannot give (configs/cmdyconv/README.md: without it
the tiny model segments both look-alikes of a motion scene, on its
training scenes too). The head is used by the segmentor's ``loss`` only,
as mmseg's ``auxiliary_head`` is; prediction does not run it.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from cmdyseg.registry import MODELS


@MODELS.register_module()
class ActionSegAuxHead(BaseModule):
    """Per-pixel action classification of the visual features.

    ``forward(visual (B, C, H, W)) -> (B, num_classes, H, W)`` logits;
    :meth:`loss` resizes them (bilinear) to the label size and returns the
    cross-entropy against each sample's ``gt_action_map`` (``(1, h, w)``
    labels: 0 = no actor, ``1 .. num_classes - 1`` the action,
    ``ignore_index`` not counted; made by
    :class:`cmdyseg.datasets.transforms.LoadA2DActionMap`), times
    ``loss_weight``.

    With ``channels=None`` the classifier is one 1x1 convolution, a linear
    read-out: the dynamic kernels of the main head read F_V^M linearly per
    location, so what this head asks for has to be linearly there, not in
    a hidden layer of its own. With ``channels=k`` a 3x3 convolution with
    k outputs and a ReLU come first (mmseg's FCN auxiliary head, shrunk).

    Args:
        in_channels (int): Channels C of the visual features.
        num_classes (int): Labels, background included (the synthetic
            data: 7 actions + 1; A2D: 9 + 1).
        channels (int, optional): Hidden channels, see above. Defaults to
            None.
        in_index (int): Which map to take when ``visual`` is a list /
            tuple (an mmseg neck's output). Defaults to -1.
        ignore_index (int): Label not counted. Defaults to 255.
        loss_weight (float): Multiplier of the loss. Defaults to 0.4
            (mmseg's auxiliary heads).
        loss_name (str): Key in the loss dict (the segmentor prefixes
            ``aux.``). Defaults to ``'loss_ce'``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 channels: Optional[int] = None,
                 in_index: int = -1,
                 ignore_index: int = 255,
                 loss_weight: float = 0.4,
                 loss_name: str = 'loss_ce',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        for arg, value, low in (('in_channels', in_channels, 1),
                                ('num_classes', num_classes, 2)):
            if type(value) is not int or value < low:
                raise ValueError(f'{name}: {arg} must be an int >= {low}, '
                                 f'got {value!r}')
        if channels is not None and (type(channels) is not int
                                     or channels < 1):
            raise ValueError(f'{name}: channels must be None or a positive '
                             f'int, got {channels!r}')
        if type(ignore_index) is not int or 0 <= ignore_index < num_classes:
            raise ValueError(f'{name}: ignore_index={ignore_index!r} must be '
                             f'an int outside the labels 0 .. '
                             f'{num_classes - 1}')
        if isinstance(loss_weight, bool) or not isinstance(
                loss_weight, (int, float)) or loss_weight < 0:
            raise ValueError(f'{name}: loss_weight={loss_weight!r} must be a '
                             'number >= 0')
        if not isinstance(loss_name, str) or 'loss' not in loss_name:
            raise ValueError(f"{name}: loss_name={loss_name!r} must contain "
                             "'loss' (mmengine sums only those entries)")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.in_index = in_index
        self.ignore_index = ignore_index
        self.loss_weight = float(loss_weight)
        self.loss_name = loss_name
        if channels is None:
            self.convs = nn.Identity()
            last_in = in_channels
        else:
            self.convs = nn.Sequential(
                nn.Conv2d(in_channels, channels, 3, padding=1),
                nn.ReLU(inplace=True))
            last_in = channels
        self.conv_seg = nn.Conv2d(last_in, num_classes, kernel_size=1)

    def forward(self, visual) -> Tensor:
        """(B, C, H, W) features -> (B, num_classes, H, W) logits."""
        if isinstance(visual, (list, tuple)):
            visual = visual[self.in_index]
        if visual.dim() != 4 or visual.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__}: visual features must be (B, '
                f'{self.in_channels}, H, W), got {tuple(visual.shape)}')
        return self.conv_seg(self.convs(visual))

    def _stack_labels(self, batch_data_samples: Sequence) -> Tensor:
        labels = []
        for i, sample in enumerate(batch_data_samples):
            if 'gt_action_map' not in sample:
                raise KeyError(
                    f'{type(self).__name__}: data sample {i} has no '
                    'gt_action_map: add LoadA2DActionMap to the train '
                    'pipeline, resize it with ResizeMask and pack it with '
                    'PackReferSegInputs(with_action_map=True)')
            labels.append(sample.gt_action_map.data[0])
        labels = torch.stack(labels).long()
        bad = (labels >= self.num_classes) & (labels != self.ignore_index)
        if bad.any():
            raise ValueError(
                f'{type(self).__name__}: gt_action_map holds label '
                f'{int(labels[bad][0])} but num_classes={self.num_classes} '
                f'(labels 0 .. {self.num_classes - 1}, ignore_index '
                f'{self.ignore_index}): set num_classes to the number of '
                'actions + 1')
        return labels

    def loss(self,
             visual,
             batch_data_samples: Sequence,
             train_cfg: Optional[dict] = None) -> Dict[str, Tensor]:
        """``{loss_name: loss_weight * cross-entropy}`` over the counted
        pixels (0 when a batch has none)."""
        logits = self(visual)
        labels = self._stack_labels(batch_data_samples).to(logits.device)
        if logits.shape[-2:] != labels.shape[-2:]:
            logits = F.interpolate(
                logits,
                size=labels.shape[-2:],
                mode='bilinear',
                align_corners=False)
        summed = F.cross_entropy(
            logits, labels, ignore_index=self.ignore_index, reduction='sum')
        counted = (labels != self.ignore_index).sum().clamp(min=1)
        return {self.loss_name: self.loss_weight * summed / counted}
