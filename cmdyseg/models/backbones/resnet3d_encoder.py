# Copyright (c) cmdyseg contributors. All rights reserved.
"""Video encoder adapter around mmaction2's I3D (``ResNet3d``).

CMDyConv's video encoder is ``F_V^S = L2(Avg_t(pI3D(V)))`` (SPEC item 1):
I3D cut at mixed_4f, averaged over time and L2-normalised at every pixel.
With mmaction2's I3D-ResNet the stand-in for mixed_4f is ``layer3``
(1024 channels for R50, spatial stride 16); the stem, ``layer1`` and
``layer2`` play the part of the frozen layers up to maxpool3d_4a.
"""
import copy
import logging
import re
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import CheckpointLoader

from cmdyseg.registry import MODELS

# The encoder always ends at layer3 (index 2 of mmaction's 4 stages).
NUM_STAGES = 3
# Per-stage settings that must have exactly ``num_stages`` entries in
# mmaction's ResNet3d; a 4-entry value (the full network) is cut to 3.
PER_STAGE_KEYS = ('spatial_strides', 'temporal_strides', 'dilations',
                  'stage_blocks')
PER_STAGE_DEFAULTS = dict(
    spatial_strides=(1, 2, 2), temporal_strides=(1, 1, 1),
    dilations=(1, 1, 1))


class LoadResult(NamedTuple):
    """What :meth:`ResNet3dEncoder.load_checkpoint` did. All lists hold
    backbone parameter/buffer names without the ``backbone.`` prefix."""
    missing_keys: List[str]
    unexpected_keys: List[str]
    skipped_keys: List[str]  # stages after layer3, dropped on purpose


@MODELS.register_module()
class ResNet3dEncoder(BaseModule):
    """I3D-ResNet video encoder cut at layer3, with the static feature.

    Builds ``backbone`` through cmdyseg's ``MODELS`` (so
    ``type='mmaction.ResNet3d'`` resolves to mmaction2) with
    ``num_stages=3, out_indices=(2, )``: the network stops after layer3.

    Output shapes for an input of (B, 3, T, H, W), with ``C =
    out_channels`` (1024 for R50, 256 for R18):

    - ``feat`` = pI3D(V): (B, C, T', H/16, W/16). T' = T / 8 with the
      I3D-R50 recipe of mmaction2 (``conv1_stride_t=2, pool1_stride_t=2``
      and ``with_pool2``); T' = T / 2 with temporal strides 1 in the stem.
    - ``static`` = F_V^S = L2(Avg_t(feat)): (B, C, H/16, W/16), every pixel
      a unit vector over channels (an all-zero pixel stays zero).

    Freezing (``frozen_stages``): the stem (``conv1``) and ``layer1`` ..
    ``layer{frozen_stages}`` get ``requires_grad=False`` and are kept in
    eval mode (BatchNorm statistics fixed) by :meth:`train`. The default 2
    mirrors the paper: I3D up to maxpool3d_4a frozen, mixed_4* fine-tuned.

    Pretrained weights (``checkpoint``) are loaded by :meth:`init_weights`
    (after the backbone's own initialisation, as OpenMMLab does for
    pretrained weights), so build the model and call ``init_weights()`` —
    mmengine's Runner does that before training.

    Args:
        backbone (dict): Config of an mmaction2 ``ResNet3d`` (or subclass),
            e.g. mmaction2's I3D-R50: ``dict(type='mmaction.ResNet3d',
            depth=50, pretrained=None, conv1_kernel=(5, 7, 7),
            conv1_stride_t=2, pool1_stride_t=2, inflate=((1, 1, 1), (1, 0,
            1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)), zero_init_residual=False)``.
            ``num_stages``/``out_indices`` are set here (other values are
            an error); 4-entry per-stage settings are cut to 3. Its
            ``frozen_stages`` must stay unset (use the argument below), and
            ``pretrained`` may only name a 2-D model to inflate
            (``pretrained2d=True``): for 3-D weights use ``checkpoint``.
        frozen_stages (int): Number of residual stages frozen together with
            the stem; -1 freezes nothing, 0 only the stem, 3 everything.
            Defaults to 2.
        checkpoint (str, optional): Path (or URL understood by mmengine) of
            an mmaction2 *recognizer* checkpoint; its ``backbone.*`` weights
            are loaded by :meth:`init_weights`. Defaults to None.
        l2_norm (bool): L2-normalise ``static`` per pixel. Defaults to True.
        eps (float): Lower bound of the norm in the L2 normalisation.
            Defaults to 1e-12.
        init_cfg (dict or list[dict], optional): mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 frozen_stages: int = 2,
                 checkpoint: Optional[str] = None,
                 l2_norm: bool = True,
                 eps: float = 1e-12,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if (not isinstance(frozen_stages, int)
                or not -1 <= frozen_stages <= NUM_STAGES):
            raise ValueError('ResNet3dEncoder: frozen_stages must be an int '
                             f'in [-1, {NUM_STAGES}], got {frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self.checkpoint = checkpoint
        self.l2_norm = l2_norm
        self.eps = eps
        self.backbone = MODELS.build(self._backbone_cfg(backbone))
        self._check_backbone()
        self.out_channels = int(self.backbone.feat_dim)
        self._freeze_stages()

    @staticmethod
    def _backbone_cfg(backbone: dict) -> dict:
        """Copy of the ResNet3d config, cut after layer3."""
        if not isinstance(backbone, dict) or 'type' not in backbone:
            raise TypeError('ResNet3dEncoder: backbone must be a config dict '
                            "with a 'type' (e.g. 'mmaction.ResNet3d'), got "
                            f'{backbone!r}')
        cfg = copy.deepcopy(dict(backbone))
        for key, want in (('num_stages', NUM_STAGES),
                          ('out_indices', (NUM_STAGES - 1, ))):
            given = cfg.get(key, want)
            if isinstance(given, (list, tuple)):
                given = tuple(given)
            if given != want:
                raise ValueError(
                    f'ResNet3dEncoder: backbone.{key}={cfg[key]!r} is not '
                    f'supported; the encoder always stops at layer3 '
                    f'({key}={want!r})')
            cfg[key] = want
        for key in PER_STAGE_KEYS:
            value = cfg.get(key, PER_STAGE_DEFAULTS.get(key))
            if value is None:
                continue
            if len(value) not in (NUM_STAGES, NUM_STAGES + 1):
                raise ValueError(
                    f'ResNet3dEncoder: backbone.{key} must have 3 or 4 '
                    f'entries (one per stage), got {value!r}')
            cfg[key] = tuple(value)[:NUM_STAGES]
        if cfg.get('frozen_stages', -1) != -1:
            raise ValueError(
                'ResNet3dEncoder: set frozen_stages on the encoder, not on '
                f'the backbone (backbone.frozen_stages='
                f'{cfg["frozen_stages"]!r})')
        if (isinstance(cfg.get('pretrained'), str)
                and not cfg.get('pretrained2d', True)):
            raise ValueError(
                'ResNet3dEncoder: backbone.pretrained with pretrained2d=False '
                "loads a checkpoint with strict=False, which silently loads "
                "nothing from a recognizer checkpoint (keys 'backbone.*'); "
                f"pass checkpoint={cfg['pretrained']!r} to the encoder "
                'instead')
        return cfg

    def _check_backbone(self) -> None:
        from mmaction.models.backbones import ResNet3d
        if not isinstance(self.backbone, ResNet3d):
            raise TypeError(
                'ResNet3dEncoder: backbone must build an mmaction2 ResNet3d '
                f'(or subclass), got {type(self.backbone).__name__}')

    def _frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        return [self.backbone.conv1] + [
            getattr(self.backbone, f'layer{i}')
            for i in range(1, self.frozen_stages + 1)
        ]

    def _freeze_stages(self) -> None:
        """Stem and the first ``frozen_stages`` stages: no gradients, eval
        mode (BatchNorm uses and keeps its running statistics)."""
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'ResNet3dEncoder':
        """Set train/eval mode, keeping the frozen stages in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """Initialise the backbone (mmaction2's scheme, and ``init_cfg``),
        then load ``checkpoint`` if one is set."""
        super().init_weights()
        if self.checkpoint is not None:
            self.load_checkpoint(self.checkpoint)

    def load_checkpoint(self, filename: str) -> LoadResult:
        """Load the ``backbone.*`` weights of an mmaction2 recognizer
        checkpoint into the backbone.

        The checkpoint is a dict with a ``state_dict`` (or is the state
        dict itself); a leading ``module.`` (DataParallel) is ignored.
        Weights of stages after layer3 are skipped on purpose; missing and
        unexpected keys are logged as warnings and returned.

        Raises:
            ValueError: if the file holds no ``backbone.*`` weights.
            RuntimeError: if a tensor's shape does not match (e.g. an R18
                checkpoint for an R50 backbone); the message names the file.
        """
        ckpt = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt,
                                                           dict) else None
        if not isinstance(state, dict):
            raise ValueError(
                f'ResNet3dEncoder: checkpoint {filename} is not a state dict '
                f"nor a dict with 'state_dict' (got {type(ckpt).__name__})")
        prefix = 'backbone.'
        weights = {}
        for key, value in state.items():
            if key.startswith('module.'):
                key = key[len('module.'):]
            if key.startswith(prefix):
                weights[key[len(prefix):]] = value
        if not weights:
            examples = ', '.join(list(state)[:5]) or 'none'
            raise ValueError(
                f'ResNet3dEncoder: checkpoint {filename} holds no '
                f"'backbone.*' weights (first keys: {examples}); expected an "
                'mmaction2 recognizer checkpoint')
        beyond = re.compile(r'layer(\d+)\.')
        skipped = sorted(
            key for key in weights if (m := beyond.match(key))
            and int(m.group(1)) > NUM_STAGES)
        for key in skipped:
            del weights[key]
        try:
            result = self.backbone.load_state_dict(weights, strict=False)
        except RuntimeError as err:
            raise RuntimeError(f'ResNet3dEncoder: cannot load checkpoint '
                               f'{filename} into the backbone: {err}') from err
        out = LoadResult(
            sorted(result.missing_keys), sorted(result.unexpected_keys),
            skipped)
        print_log(
            f'ResNet3dEncoder: loaded {len(weights)} backbone tensors from '
            f'{filename} (skipped {len(skipped)} of stages after layer3)',
            logger='current')
        for kind, keys in (('missing', out.missing_keys),
                           ('unexpected', out.unexpected_keys)):
            if keys:
                print_log(
                    f'ResNet3dEncoder: {len(keys)} {kind} keys loading '
                    f'{filename}: {", ".join(keys)}',
                    logger='current',
                    level=logging.WARNING)
        return out

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode a clip.

        Args:
            x (Tensor): Video clip, (B, in_channels, T, H, W).

        Returns:
            tuple[Tensor]: ``feat`` (B, C, T', H/16, W/16), the layer3
            features before temporal pooling, and ``static`` = F_V^S
            (B, C, H/16, W/16), their temporal mean, L2-normalised over
            channels at every pixel when ``l2_norm``.
        """
        in_channels = self.backbone.in_channels
        if x.dim() != 5 or x.shape[1] != in_channels:
            raise ValueError(
                f'ResNet3dEncoder: expected a clip (B, {in_channels}, T, H, '
                f'W), got {tuple(x.shape)}')
        feat = self.backbone(x)
        static = feat.mean(dim=2)
        if self.l2_norm:
            static = F.normalize(static, p=2, dim=1, eps=self.eps)
        return feat, static
