# Copyright (c) cmdyseg contributors. All rights reserved.
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData

from cmdyseg.registry import MODELS
from cmdyseg.structures import ReferSegDataSample
from .data_preprocessor import stack_masks

SampleList = List[ReferSegDataSample]


def weighted_bce_loss(logits: torch.Tensor, target: torch.Tensor,
                      fg_weight: float = 1.5) -> torch.Tensor:
    """Eq. 16: ``-lambda Y log s(R) - (1 - Y) log(1 - s(R))``, averaged
    over pixels and samples.

    Args:
        logits (Tensor): R^L, (B, 1, H, W), already at the label size.
        target (Tensor): Y in {0, 1}, (B, 1, H, W).
        fg_weight (float): lambda, the weight of foreground pixels.
    """
    weight = torch.where(target > 0.5, fg_weight, 1.0).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(
        logits, target.to(logits.dtype), weight=weight, reduction='mean')


def response_to_mask(prob: torch.Tensor, mode: str = 'half_max',
                     thr: float = 0.5) -> torch.Tensor:
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


@MODELS.register_module()
class CMDySegmentor(BaseModel):
    """Segment the actor a sentence refers to in the centre frame of a clip.

    ``inputs`` (B, 3, T, H, W) -> backbone -> ``(feat, static)`` with feat
    (B, C, T', h, w) and static F_V^S (B, C, h, w) -> neck (Decon, optional
    ConvLSTM branch) -> F_V^M (B, D_M, 4h, 4w); sentences (from the data
    samples' metainfo) -> text encoder -> F_T (B, D_T); head(F_V^M, F_T) ->
    response map R^M (B, 1, 4h, 4w).

    Args:
        backbone (dict): Video encoder returning ``(feat, static)``.
        text_encoder (dict): Sentence encoder, ``list[str] -> (B, D_T)``.
        head (dict): Head, ``(visual (B, C, H, W), text (B, D_T)) ->
            (B, 1, H, W)`` logits.
        neck (dict, optional): Maps ``(feat, static)`` to F_V^M. Without a
            neck the head gets ``static``.
        fg_weight (float): lambda of eq. 16. Defaults to 1.5 (the paper).
        test_cfg (dict, optional): ``mode`` ('half_max' (default, the
            paper's rule) or 'absolute') and ``thr`` (0.5).
        data_preprocessor (dict, optional): Defaults to
            :class:`ReferSegDataPreprocessor`.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 text_encoder: dict,
                 head: dict,
                 neck: Optional[dict] = None,
                 fg_weight: float = 1.5,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ReferSegDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.text_encoder = MODELS.build(text_encoder)
        self.head = MODELS.build(head)
        self.fg_weight = fg_weight
        self.test_cfg = dict(mode='half_max', thr=0.5)
        self.test_cfg.update(test_cfg or {})
        response_to_mask(torch.zeros(1, 1, 1, 1), **self.test_cfg)

    @staticmethod
    def _sentences(data_samples: Optional[SampleList],
                   batch_size: int) -> List[str]:
        if data_samples is None or len(data_samples) != batch_size:
            raise ValueError(
                f'CMDySegmentor needs one data sample with a sentence per '
                f'clip: got {0 if data_samples is None else len(data_samples)}'
                f' for {batch_size} clips')
        sentences = []
        for i, sample in enumerate(data_samples):
            sentence = sample.metainfo.get('sentence')
            if not isinstance(sentence, str):
                raise ValueError(f'data sample {i} has no "sentence" string '
                                 f'in its metainfo (got {sentence!r})')
            sentences.append(sentence)
        return sentences

    def extract_feat(self, inputs: torch.Tensor,
                     sentences: Sequence[str]) -> Tuple[torch.Tensor, ...]:
        """Return F_V^M (B, D_M, H', W') and F_T (B, D_T)."""
        feats = self.backbone(inputs)
        visual = self.neck(feats) if self.neck is not None else feats[1]
        text = self.text_encoder(list(sentences))
        return visual, text

    def _forward(self,
                 inputs: torch.Tensor,
                 data_samples: Optional[SampleList] = None) -> torch.Tensor:
        """Response map R^M, (B, 1, H', W') logits."""
        visual, text = self.extract_feat(
            inputs, self._sentences(data_samples, inputs.shape[0]))
        return self.head(visual, text)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[SampleList] = None,
                mode: str = 'tensor') -> Union[Dict, SampleList, torch.Tensor]:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', "
                         f'got {mode!r}')

    def loss(self, inputs: torch.Tensor,
             data_samples: SampleList) -> Dict[str, torch.Tensor]:
        """Eq. 16 with R^M upsampled bilinearly to the label size."""
        logits = self._forward(inputs, data_samples)
        target = stack_masks(data_samples, 'gt_mask').to(logits.device)
        logits = F.interpolate(
            logits, size=target.shape[-2:], mode='bilinear',
            align_corners=False)
        return dict(loss_mask=weighted_bce_loss(logits, target,
                                                self.fg_weight))

    def predict(self, inputs: torch.Tensor,
                data_samples: SampleList) -> SampleList:
        """Set ``seg_logits`` (at the input size), ``pred_mask`` (at
        ``ori_shape``, the original frame size) and ``pred_score`` (mean
        probability inside the mask) on each data sample."""
        logits = self._forward(inputs, data_samples)
        in_size = tuple(inputs.shape[-2:])
        for logit, sample in zip(logits, data_samples):
            logit = logit.unsqueeze(0).float()
            at_input = F.interpolate(
                logit, size=in_size, mode='bilinear', align_corners=False)
            ori_shape = tuple(sample.metainfo.get('ori_shape', in_size))[:2]
            at_ori = F.interpolate(
                logit, size=ori_shape, mode='bilinear', align_corners=False)
            prob = at_ori.sigmoid()
            mask = response_to_mask(prob, **self.test_cfg)
            sample.seg_logits = PixelData(data=at_input[0])
            sample.pred_mask = PixelData(data=mask[0].to(torch.uint8))
            # confidence of the mask (ranks predictions in the COCO AP)
            sample.pred_score = prob[mask].mean() if mask.any() else \
                prob.new_zeros(())
        return data_samples
