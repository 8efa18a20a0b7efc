# Copyright (c) cmdyseg contributors. All rights reserved.
"""Shared skeleton of the dynamic-convolution heads (Table 3 rows): the
stacked blocks, and the decode-head contract (loss / predict) that lets
other OpenMMLab projects use a head as mmseg uses its decode heads."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule, ModuleList
from mmengine.registry import DefaultScope
from torch import Tensor

from cmdyseg.registry import MODELS
from ..layers import COORD_CHANNELS, coord_features

DEFAULT_LOSS = dict(type='WeightedBCELoss', fg_weight=1.5, loss_weight=1.0)
DEFAULT_TEST_CFG = dict(mode='half_max', thr=0.5)


def response_to_mask(prob: Tensor, mode: str = 'half_max',
                     thr: float = 0.5) -> Tensor:
    """Binarise response maps (B, 1, H, W) of probabilities.

    ``mode='half_max'`` (SPEC item 12, the paper): a pixel is foreground
    when its value is higher than ``thr`` times the map's maximum (thr 0.5:
    half of the maximum). ``mode='absolute'``: when it is higher than
    ``thr``.
    """
    if mode == 'half_max':
        peak = prob.flatten(1).amax(dim=1).view(-1, 1, 1, 1)
        return prob > thr * peak
    if mode == 'absolute':
        return prob > thr
    raise ValueError(f"test_cfg.mode must be 'half_max' or 'absolute', "
                     f'got {mode!r}')


def _size(shape) -> Tuple[int, int]:
    return tuple(int(s) for s in tuple(shape)[:2])


class BaseDyConvHead(BaseModule):
    """Stack of ``num_modules`` interaction blocks between visual features
    and a sentence vector; the last block emits the response map ``R^M``.

    ``forward(visual (B, C, H, W), text (B, D_T)) -> (B, 1, H, W)`` logits.
    Coordinate maps (B, D_C, H, W) (see
    :func:`cmdyseg.models.layers.coord_features`) are built for the input
    size and fed to every block. Intermediate blocks update the features
    with a residual connection, ``x <- act(x + norm(R(x)))``.

    Training and prediction follow mmseg's decode-head contract, with the
    sentence vector as a second input:

    - :meth:`loss` ``(visual, text, batch_data_samples, train_cfg) -> dict``
      = :meth:`forward` then :meth:`loss_by_feat`: the logits are resized
      (bilinear, ``align_corners``) to the label size and every loss of
      ``loss_decode`` is applied; the dict holds one entry per
      ``loss_name`` (entries of the same name are summed).
    - :meth:`predict` ``(visual, text, batch_img_metas, test_cfg) -> list``
      = :meth:`forward` then :meth:`predict_by_feat`: per sample the logits
      at ``img_shape``, the mask at ``ori_shape`` by the half-max rule and
      its score.

    Fields the head reads from a data sample (:meth:`loss_by_feat`):
    ``gt_mask`` (cmdyseg's :class:`ReferSegDataSample`, ``(1, H, W)``, 0/1),
    else ``gt_sem_seg`` (mmseg's ``SegDataSample``, ``(1, H, W)`` labels:
    0 = background, ``ignore_index`` = not counted, any other label = the
    referred object). Keys it reads from an image meta
    (:meth:`predict_by_feat`): ``ori_shape`` (required: the size of the
    returned mask) and ``img_shape`` (the network input size; the logits'
    own size when absent).

    ``visual`` may also be a list / tuple of feature maps (an mmseg
    backbone's or neck's output): the head takes ``visual[in_index]``.

    Args:
        in_channels (int): C = D_M, channels of the visual features.
        text_channels (int): D_T, size of the sentence vector.
        groups (int): G, number of groups (C must be divisible by G).
        num_modules (int): number of stacked blocks (>= 1).
        coord_channels (int): D_C, 8 (Gavrilyuk et al.), 2 or 0.
        loss_decode (dict | list[dict]): The loss(es), built from the model
            registry in cmdyseg's scope (``WeightedBCELoss`` -- the paper's
            eq. 16 --, ``DiceLoss``, ``SigmoidFocalLoss``) or any module
            with ``forward(logits, target, valid)`` and a ``loss_name``
            (another project's with its scope prefix).
            Defaults to eq. 16 with lambda = 1.5.
        align_corners (bool): ``align_corners`` of every bilinear resize
            of the logits. Defaults to False.
        ignore_index (int): Label of ``gt_sem_seg`` pixels that do not
            count. Defaults to 255 (mmseg's).
        in_index (int): Which map of a list / tuple ``visual`` to use.
            Defaults to -1.
        refine (dict, optional): Not in the paper: run the blocks on
            ``visual`` average-pooled by ``scale`` and refine their response
            at ``visual``'s resolution with a
            :class:`~cmdyseg.models.heads.dyconv_blocks.ResponseRefiner`
            (``dict(scale=2, channels=16)``): a finer response for the cost
            of the blocks at the coarser resolution. H and W must be
            divisible by ``scale``. Defaults to None (the blocks' response
            is the output).
        init_cfg (dict | list | None): mmengine initialisation config.
    """

    #: whether the blocks split the channels into ``groups`` (the baseline
    #: DyConv does not, so its ``groups`` is not checked)
    uses_groups = True
    #: read by mmseg's segmentors (``EncoderDecoder._init_decode_head``):
    #: one sigmoid output for two classes (background, referred object)
    num_classes = 2
    out_channels = 1

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 groups: int = 64,
                 num_modules: int = 3,
                 coord_channels: int = 8,
                 loss_decode: Union[dict, Sequence[dict]] = DEFAULT_LOSS,
                 align_corners: bool = False,
                 ignore_index: int = 255,
                 in_index: int = -1,
                 refine: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        for arg, val in (('in_channels', in_channels),
                         ('text_channels', text_channels),
                         ('groups', groups), ('num_modules', num_modules)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f'{name}: {arg}={val!r} must be a positive '
                                 'int')
        if self.uses_groups and in_channels % groups:
            raise ValueError(f'{name}: groups={groups} must divide '
                             f'in_channels={in_channels}')
        if coord_channels not in COORD_CHANNELS:
            raise ValueError(f'{name}: coord_channels={coord_channels!r} '
                             f'must be one of {COORD_CHANNELS}')
        self.in_channels = in_channels
        self.text_channels = text_channels
        self.groups = groups
        self.num_modules = num_modules
        self.coord_channels = coord_channels
        self.align_corners = align_corners
        self.ignore_index = ignore_index
        self.in_index = in_index
        self.loss_decode = self._build_losses(loss_decode)
        self.refine_scale, self.refiner = self._build_refiner(refine)

    def _build_refiner(self, refine: Optional[dict]):
        if refine is None:
            return 1, None
        from .dyconv_blocks import ResponseRefiner
        name = type(self).__name__
        if not isinstance(refine, dict) or set(refine) - {'scale',
                                                          'channels'}:
            raise ValueError(f'{name}: refine must be None or a dict with '
                             f"keys 'scale' and 'channels', got {refine!r}")
        scale = refine.get('scale', 2)
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f'{name}: refine scale={scale!r} must be an int '
                             '>= 2')
        return scale, ResponseRefiner(
            self.in_channels, self.text_channels,
            channels=refine.get('channels', 16),
            align_corners=self.align_corners)

    def _build_losses(self, loss_decode) -> nn.ModuleList:
        name = type(self).__name__
        cfgs = [loss_decode] if isinstance(loss_decode, dict) else \
            list(loss_decode or [])
        if not cfgs:
            raise ValueError(f'{name}: loss_decode needs at least one loss')
        losses = nn.ModuleList()
        for cfg in cfgs:
            if not isinstance(cfg, dict):
                raise TypeError(f'{name}: loss_decode must be a dict or a '
                                f'list of dicts, got {cfg!r}')
            # unprefixed types are cmdyseg's, whichever project's scope is
            # current (e.g. mmseg's, when a user's config imports the head);
            # 'mmseg.DiceLoss' still reaches another project's loss
            with DefaultScope.overwrite_default_scope('cmdyseg'):
                loss = MODELS.build(cfg)
            if not isinstance(getattr(loss, 'loss_name', None), str):
                raise TypeError(f'{name}: loss {cfg.get("type")!r} has no '
                                '"loss_name" str (the key of its entry in '
                                'the loss dict)')
            losses.append(loss)
        return losses

    def _build_blocks(self):
        # mmengine's ModuleList passes init_weights() on to the blocks
        self.blocks = ModuleList([
            self.build_block(last=(i == self.num_modules - 1))
            for i in range(self.num_modules)
        ])

    def build_block(self, last: bool) -> nn.Module:
        """One block: ``forward(x, text, coords)``; ``last`` blocks return
        (B, 1, H, W), the others (B, C, H, W)."""
        raise NotImplementedError

    def forward(self, visual: Union[Tensor, Sequence[Tensor]],
                text: Tensor) -> Tensor:
        """
        Args:
            visual (Tensor | list[Tensor]): (B, C, H, W) visual features
                F_V^M (or a list of maps, see ``in_index``).
            text (Tensor): (B, D_T) sentence features F_T.

        Returns:
            Tensor: (B, 1, H, W) response map R^M (logits), at the
            resolution of ``visual`` (also with ``refine``).
        """
        name = type(self).__name__
        if isinstance(visual, (list, tuple)):
            visual = visual[self.in_index]
        if visual.dim() != 4 or visual.shape[1] != self.in_channels:
            raise ValueError(
                f'{name}: visual must be (B, {self.in_channels}, H, W), got '
                f'{tuple(visual.shape)}')
        if text.dim() != 2 or tuple(text.shape) != (visual.shape[0],
                                                    self.text_channels):
            raise ValueError(
                f'{name}: text must be (B, D_T) = '
                f'{(visual.shape[0], self.text_channels)}, got '
                f'{tuple(text.shape)}')
        s = self.refine_scale
        fine = visual
        if s > 1:
            if visual.shape[-2] % s or visual.shape[-1] % s:
                raise ValueError(
                    f'{name}: visual {tuple(visual.shape)} must have H and W '
                    f'divisible by refine scale={s}')
            visual = F.avg_pool2d(visual, s)
        b, _, h, w = visual.shape
        coords = coord_features(
            b,
            h,
            w,
            self.coord_channels,
            device=visual.device,
            dtype=visual.dtype)
        x = visual
        for block in self.blocks:
            x = block(x, text, coords)
        if self.refiner is not None:
            x = self.refiner(x, fine, text)
        return x

    def resize(self, logits: Tensor, size: Sequence[int]) -> Tensor:
        """Bilinear resize of (B, 1, h, w) logits to ``size`` (H, W)."""
        size = _size(size)
        if tuple(logits.shape[-2:]) == size:
            return logits
        return F.interpolate(
            logits, size=size, mode='bilinear',
            align_corners=self.align_corners)

    # ---------------------------------------------------------- training
    def loss(self, visual, text: Tensor, batch_data_samples: Sequence,
             train_cfg: Optional[dict] = None) -> Dict[str, Tensor]:
        """The losses of one batch: :meth:`forward` then
        :meth:`loss_by_feat`. ``train_cfg`` is accepted for mmseg's
        signature and unused."""
        return self.loss_by_feat(self(visual, text), batch_data_samples)

    def _stack_batch_gt(
            self, batch_data_samples: Sequence
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """Targets (B, 1, H, W) float in {0, 1} and the valid pixels
        (B, 1, H, W) bool, or None when every pixel counts."""
        targets, valids = [], []
        for i, sample in enumerate(batch_data_samples):
            if 'gt_mask' in sample:
                mask = sample.gt_mask.data
                targets.append(mask > 0)
                valids.append(None)
            elif 'gt_sem_seg' in sample:
                labels = sample.gt_sem_seg.data
                valid = labels != self.ignore_index
                targets.append((labels != 0) & valid)
                valids.append(valid)
            else:
                video = sample.metainfo.get('video_id',
                                            sample.metainfo.get('img_path'))
                raise KeyError(
                    f'{type(self).__name__}: data sample {i} ({video}) has '
                    "neither 'gt_mask' (cmdyseg) nor 'gt_sem_seg' (mmseg)")
            if targets[-1].dim() == 2:
                targets[-1] = targets[-1][None]
                if valids[-1] is not None:
                    valids[-1] = valids[-1][None]
        shapes = {tuple(t.shape) for t in targets}
        if len(shapes) != 1:
            raise ValueError(f'{type(self).__name__}: the targets of a batch '
                             f'have different sizes {sorted(shapes)}')
        target = torch.stack(targets).float()
        if all(v is None for v in valids):
            return target, None
        valid = torch.stack([
            torch.ones_like(t) if v is None else v
            for t, v in zip(targets, valids)
        ])
        return target, valid

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: Sequence) -> Dict[str, Tensor]:
        """Losses of (B, 1, h, w) logits against the samples' targets.

        The logits are resized to the label size (eq. 16 is defined on
        R^L, the map at the label size); the returned dict maps each
        loss's ``loss_name`` to its value (summed over losses that share a
        name).
        """
        target, valid = self._stack_batch_gt(batch_data_samples)
        target = target.to(seg_logits.device)
        if valid is not None:
            valid = valid.to(seg_logits.device)
        logits = self.resize(seg_logits, target.shape[-2:])
        losses: Dict[str, Tensor] = {}
        for loss in self.loss_decode:
            value = loss(logits, target, valid)
            name = loss.loss_name
            losses[name] = losses[name] + value if name in losses else value
        return losses

    # -------------------------------------------------------- prediction
    def predict(self, visual, text: Tensor, batch_img_metas: Sequence[dict],
                test_cfg: Optional[dict] = None) -> List[Dict[str, Tensor]]:
        """Masks of one batch: :meth:`forward` then
        :meth:`predict_by_feat`."""
        return self.predict_by_feat(self(visual, text), batch_img_metas,
                                    test_cfg)

    def predict_by_feat(self,
                        seg_logits: Tensor,
                        batch_img_metas: Sequence[dict],
                        test_cfg: Optional[dict] = None
                        ) -> List[Dict[str, Tensor]]:
        """Turn (B, 1, h, w) logits into masks, one sample at a time.

        The logits are resized to ``ori_shape`` and passed through a
        sigmoid; the mask keeps the pixels above ``thr`` times the map's
        maximum (``test_cfg``: ``mode='half_max'``, ``thr=0.5``, the
        paper's rule; ``mode='absolute'`` thresholds at ``thr``).

        Args:
            seg_logits (Tensor): (B, 1, h, w) response maps (logits).
            batch_img_metas (list[dict]): per sample ``ori_shape`` (H, W)
                and optionally ``img_shape``.
            test_cfg (dict, optional): ``mode`` and ``thr``.

        Returns:
            list[dict]: per sample ``seg_logits`` (1, h', w') float at
            ``img_shape``, ``pred_mask`` (1, H, W) uint8 0/1 at
            ``ori_shape`` and ``pred_score`` (0-dim), the mean probability
            inside the mask (0 for an empty mask) -- the confidence that
            ranks predictions in the COCO AP.
        """
        cfg = dict(DEFAULT_TEST_CFG)
        cfg.update(test_cfg or {})
        if len(batch_img_metas) != seg_logits.shape[0]:
            raise ValueError(
                f'{type(self).__name__}: {len(batch_img_metas)} image metas '
                f'for {seg_logits.shape[0]} response maps')
        results = []
        for logit, meta in zip(seg_logits.float(), batch_img_metas):
            if meta.get('ori_shape') is None:
                raise KeyError(f'{type(self).__name__}: an image meta has no '
                               "'ori_shape' (the size of the mask to return)")
            logit = logit[None]
            img_shape = meta.get('img_shape') or logit.shape[-2:]
            prob = self.resize(logit, meta['ori_shape']).sigmoid()
            mask = response_to_mask(prob, cfg['mode'], cfg['thr'])
            area = mask.sum()
            score = (prob * mask).sum() / area.clamp(min=1)
            results.append(
                dict(
                    seg_logits=self.resize(logit, img_shape)[0],
                    pred_mask=mask[0].to(torch.uint8),
                    pred_score=score))
        return results
