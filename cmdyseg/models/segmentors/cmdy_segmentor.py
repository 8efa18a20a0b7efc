# Copyright (c) cmdyseg contributors. All rights reserved.
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import PixelData

from cmdyseg.registry import MODELS
from cmdyseg.structures import ReferSegDataSample
from ..heads.base_dyconv_head import DEFAULT_TEST_CFG, response_to_mask

SampleList = List[ReferSegDataSample]


@MODELS.register_module()
class CMDySegmentor(BaseModel):
    """Segment the actor a sentence refers to in the centre frame of a clip.

    :meth:`encode_video`: ``inputs`` (B, 3, T, H, W) -> backbone ->
    ``(feat, static)`` with feat (B, C, T', h, w) and static F_V^S (B, C,
    h, w) -> neck (Decon, optional ConvLSTM branch) -> F_V^M (B, D_M, 4h,
    4w). :meth:`encode_text`: sentences (from the data samples' metainfo)
    -> text encoder -> F_T (B, D_T). The head owns the rest: its ``loss``
    (training) and ``predict`` (masks at the original frame size), as
    mmseg's segmentors hand over to their decode heads.

    Args:
        backbone (dict): Video encoder returning ``(feat, static)``.
        text_encoder (dict): Sentence encoder, ``list[str] -> (B, D_T)``.
        head (dict): A head with mmseg's decode-head contract and the
            sentence as a second input (see
            :class:`cmdyseg.models.heads.BaseDyConvHead`); its
            ``loss_decode`` holds the loss (eq. 16 by default).
        neck (dict, optional): Maps ``(feat, static)`` to F_V^M. Without a
            neck the head gets ``static``.
        auxiliary_head (dict, optional): A head trained beside the main
            one on F_V^M (mmseg's ``auxiliary_head``): its ``loss(visual,
            data_samples, train_cfg)`` is added, its keys prefixed
            ``aux.``; prediction does not use it (e.g.
            :class:`cmdyseg.models.heads.ActionSegAuxHead`).
        train_cfg (dict, optional): Passed to the head's ``loss``.
        test_cfg (dict, optional): Passed to the head's ``predict``:
            ``mode`` ('half_max' (default, the paper's rule) or 'absolute')
            and ``thr`` (0.5).
        data_preprocessor (dict, optional): Defaults to
            :class:`ReferSegDataPreprocessor`.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 text_encoder: dict,
                 head: dict,
                 neck: Optional[dict] = None,
                 auxiliary_head: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs):
        if 'fg_weight' in kwargs:
            raise TypeError(
                'CMDySegmentor: fg_weight is now an argument of the head\'s '
                'loss: head=dict(..., loss_decode=dict(type=\'WeightedBCELoss'
                f"', fg_weight={kwargs['fg_weight']!r}))")
        if kwargs:
            raise TypeError('CMDySegmentor got unexpected arguments '
                            f'{sorted(kwargs)}')
        if data_preprocessor is None:
            data_preprocessor = dict(type='ReferSegDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.text_encoder = MODELS.build(text_encoder)
        self.head = MODELS.build(head)
        self.auxiliary_head = (
            MODELS.build(auxiliary_head)
            if auxiliary_head is not None else None)
        self.train_cfg = train_cfg
        self.test_cfg = dict(DEFAULT_TEST_CFG)
        self.test_cfg.update(test_cfg or {})
        # a wrong mode fails when the model is built, not after training
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

    def encode_video(self, inputs: torch.Tensor) -> torch.Tensor:
        """F_V^M (B, D_M, H', W') of normalised clips (B, 3, T, H, W)."""
        return self._from_backbone(self.backbone(inputs))

    def _from_backbone(self, feats: Tuple[torch.Tensor, ...],
                       split: bool = False):
        """F_V^M of the backbone's outputs (``split``: its ``(deep,
        early)`` parts, see :meth:`encode_video_split`)."""
        if self.neck is None:
            return (feats[1], None) if split else feats[1]
        return self.neck(feats, part='split') if split else self.neck(feats)

    def frame_support(self) -> Optional[str]:
        """Why :meth:`encode_windows` cannot share the video encoder's work
        between overlapping clips (None when it can: a backbone in which
        no convolution mixes frames, see
        ``ResNet3dEncoder.frame_support``)."""
        if not hasattr(self.backbone, 'frame_support'):
            return (f'its backbone {type(self.backbone).__name__} has no '
                    'per-frame pass (ResNet3dEncoder has)')
        return self.backbone.frame_support()

    def encode_windows(self, load, windows, cache=None, split: bool = False):
        """:meth:`encode_video` (``split``: :meth:`encode_video_split`) of
        the clips ``frames[windows]``, each frame's backbone maps computed
        once (``ResNet3dEncoder.forward_windows``: ``load`` gives the
        normalised frames (n, 3, 1, H, W) of frame indices, ``cache`` a
        ``FrameCache`` kept across the calls on one video). Equal to the
        per-clip result where :meth:`frame_support` is None (tested)."""
        why = self.frame_support()
        if why is not None:
            raise ValueError(f'{type(self).__name__}: the clips cannot share '
                             f'their frames: {why}')
        return self._from_backbone(
            self.backbone.forward_windows(load, windows, cache), split)

    def encode_windows_early(self, load, windows, cache=None):
        """:meth:`encode_video_early` of the clips ``frames[windows]`` from
        the shared frames (see :meth:`encode_windows`): the early maps'
        centre steps gathered from the cache, not recomputed."""
        why = self.early_support() or self.frame_support()
        if why is not None:
            raise ValueError(f'{type(self).__name__}: the early maps cannot '
                             f'be taken from the shared frames: {why}')
        return self.neck(
            self.backbone.forward_windows(load, windows, cache,
                                          centre_only=True),
            part='early')

    def early_support(self) -> Optional[str]:
        """Why the early maps' part of F_V^M cannot be computed per frame
        from the frames around it (None when it can; see
        :meth:`encode_video_split`)."""
        if self.neck is None or not getattr(self.neck, 'skip_channels', ()):
            return 'the model has no early maps (no neck skip_channels)'
        if getattr(self.neck, 'skip_reduce', None) != 'centre':
            return ('its neck averages the early maps over the clip '
                    f"(skip_reduce={getattr(self.neck, 'skip_reduce', None)!r}"
                    "), so they are not the frame's own; skip_reduce='centre' "
                    'is')
        if not hasattr(self.backbone, 'centre_support'):
            return (f'its backbone {type(self.backbone).__name__} has no '
                    'centre pass (ResNet3dEncoder has)')
        return self.backbone.centre_support()

    def encode_video_split(
            self, inputs: torch.Tensor
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(deep, early)`` of clips with ``F_V^M = deep + early``:
        ``early`` is what the early maps' centre steps add (None without
        early maps), ``deep`` the rest (the layer3 pair and the early
        ConvLSTM); see ``TemporalDeconNeck.forward(part='split')``."""
        return self._from_backbone(self.backbone(inputs), split=True)

    def encode_video_early(self, inputs: torch.Tensor) -> torch.Tensor:
        """The ``early`` of :meth:`encode_video_split` from the frames
        around each clip's centre only (the encoder's ``centre_only``
        pass): a frame's own early maps at a fraction of a clip's cost.
        Raises ValueError naming why where :meth:`early_support` says it
        cannot."""
        why = self.early_support()
        if why is not None:
            raise ValueError(f'{type(self).__name__}: the early maps cannot '
                             f'be computed per frame: {why}')
        return self.neck(self.backbone(inputs, centre_only=True),
                         part='early')

    def encode_text(self, sentences: Sequence[str]) -> torch.Tensor:
        """F_T (S, D_T) of S sentences."""
        return self.text_encoder(list(sentences))

    def extract_feat(self, inputs: torch.Tensor,
                     data_samples: SampleList) -> Tuple[torch.Tensor, ...]:
        """F_V^M (B, D_M, H', W') and F_T (B, D_T) of a batch: each clip
        with the sentence of its data sample."""
        return (self.encode_video(inputs),
                self.encode_text(
                    self._sentences(data_samples, inputs.shape[0])))

    def _forward(self,
                 inputs: torch.Tensor,
                 data_samples: Optional[SampleList] = None) -> torch.Tensor:
        """Response map R^M, (B, 1, H', W') logits."""
        return self.head(*self.extract_feat(inputs, data_samples))

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
        """The head's losses (eq. 16 by default, on R^M upsampled to the
        label size), and the auxiliary head's as ``aux.<name>``."""
        visual, text = self.extract_feat(inputs, data_samples)
        losses = self.head.loss(visual, text, data_samples, self.train_cfg)
        if self.auxiliary_head is not None:
            aux = self.auxiliary_head.loss(visual, data_samples,
                                           self.train_cfg)
            losses.update({f'aux.{k}': v for k, v in aux.items()})
        return losses

    def predict(self, inputs: torch.Tensor,
                data_samples: SampleList) -> SampleList:
        """Set ``seg_logits`` (at the input size), ``pred_mask`` (at
        ``ori_shape``, the original frame size) and ``pred_score`` (mean
        probability inside the mask) on each data sample."""
        visual, text = self.extract_feat(inputs, data_samples)
        in_size = tuple(inputs.shape[-2:])
        metas = []
        for sample in data_samples:
            # the logits are returned at the size the network saw
            meta = dict(sample.metainfo, img_shape=in_size)
            meta.setdefault('ori_shape', in_size)
            metas.append(meta)
        preds = self.head.predict(visual, text, metas, self.test_cfg)
        return self.add_pred_to_datasample(data_samples, preds)

    @staticmethod
    def add_pred_to_datasample(data_samples: SampleList,
                               preds: Sequence[Dict]) -> SampleList:
        """Put the head's per-sample predictions on the data samples."""
        for sample, pred in zip(data_samples, preds):
            sample.seg_logits = PixelData(data=pred['seg_logits'])
            sample.pred_mask = PixelData(data=pred['pred_mask'])
            sample.pred_score = pred['pred_score']
        return data_samples
