# Copyright (c) cmdyseg contributors. All rights reserved.
"""Video encoder adapter around mmaction2's Video Swin Transformer
(``SwinTransformer3D``, Liu et al., CVPR 2022).

The same contract as :class:`ResNet3dEncoder` and :class:`InceptionI3D`
(SPEC item 1, ``F_V^S = L2(Avg_t(pI3D(V)))``): ``forward`` returns the
features of the stride-16 stage before temporal pooling (for the ConvLSTM
branch of the neck) and their temporal mean, L2-normalised at every pixel.
In Video Swin the stride-16 stage is the third one (index 2: patch
embedding stride 4, then one patch merging per stage), with ``4 *
embed_dims`` channels (384 for Swin-T, 512 for Swin-B); the network is cut
after it, so the fourth stage and the patch merging before it are not
built.
"""
import copy
import re
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from cmdyseg.registry import MODELS
from .pretrained import (CheckedPretrainedMixin, LoadResult,
                         load_checked_state, read_state_dict,
                         removed_checkpoint_error)

# The encoder always ends at the third stage (index 2 of Swin's 4).
NUM_STAGES = 3
# A checkpoint holding fewer of the backbone's tensors than this is for
# another network (or read with the wrong prefix): an error. The full
# network's norm3 is not built; norm2 (the output norm of the stage kept)
# is not in mmaction2's Kinetics checkpoints and stays at its init.
MIN_LOADED_FRACTION = 0.5
_LAYER_KEY = re.compile(r'layers\.(\d+)\.')


def _not_built(key: str) -> bool:
    """Checkpoint keys of the parts of the full Swin that are cut: stage 4,
    the patch merging after stage 3 and the final norm."""
    if key.startswith('norm3.'):
        return True
    match = _LAYER_KEY.match(key)
    if match is None:
        return False
    stage = int(match.group(1))
    return stage >= NUM_STAGES or (stage == NUM_STAGES - 1 and key.startswith(
        f'layers.{stage}.downsample.'))


@MODELS.register_module()
class Swin3dEncoder(CheckedPretrainedMixin, BaseModule):
    """Video Swin video encoder cut at its stride-16 stage, with F_V^S.

    Builds ``backbone`` through cmdyseg's ``MODELS`` (so
    ``type='mmaction.SwinTransformer3D'`` resolves to mmaction2) with the
    first three stages of its ``arch`` (``'tiny'``, ``'small'``,
    ``'base'``, ``'large'`` or a dict), ``out_indices=(2, )`` and
    ``out_after_downsample=False``.

    Output shapes for an input of (B, 3, T, H, W), with ``C =
    out_channels = 4 * embed_dims`` (384 Swin-T/S, 512 Swin-B, 768
    Swin-L) and the default patch size (2, 4, 4):

    - ``feat``: (B, C, ceil(T / 2), ceil(H / 16), ceil(W / 16)), the
      layer-normalised output of the third stage;
    - ``static`` = F_V^S = L2(Avg_t(feat)): (B, C, H/16, W/16), every pixel
      a unit vector over channels (``l2_norm``).

    Freezing: ``frozen_stages`` is mmaction2's: 0 freezes the patch
    embedding, k >= 1 also the first k stages (``requires_grad=False`` and
    eval mode, kept by mmaction's own ``train``); -1 (default) nothing, 3
    everything.

    Pretrained weights: ``pretrained=None`` by default (the network starts
    from mmaction2's initialisation). An mmaction2 Video Swin *recognizer*
    checkpoint (e.g. Swin-T or Swin-B on Kinetics-400) loads with
    ``init_cfg=dict(type='Pretrained', checkpoint=PATH,
    prefix='backbone.')``: after removing the prefix its keys are those of
    the wrapped ``SwinTransformer3D``; the weights of the parts not built
    (stage 4, the patch merging after stage 3, ``norm3``) are skipped on
    purpose, and ``norm2`` (not in those checkpoints) keeps its init. As
    for the I3D adapters, a checkpoint holding less than
    ``MIN_LOADED_FRACTION`` of the tensors, or a tensor of another shape
    (another arch or window size), is an error naming the file. An
    ImageNet 2-D Swin checkpoint is inflated by mmaction2 itself with
    ``backbone=dict(..., pretrained=PATH, pretrained2d=True)`` (loaded with
    ``strict=False``: check its log).

    Args:
        backbone (dict): Config of an mmaction2 ``SwinTransformer3D``, e.g.
            ``dict(type='mmaction.SwinTransformer3D', arch='tiny',
            patch_size=(2, 4, 4), window_size=(8, 7, 7),
            drop_path_rate=0.1)``. ``out_indices`` / ``out_after_downsample``
            are set here (other values are an error), a 4-stage ``arch`` is
            cut to 3 stages, ``pretrained`` must stay None unless
            ``pretrained2d=True`` (3-D weights go through the encoder's
            ``init_cfg``), ``frozen_stages`` and a ``Pretrained`` init_cfg
            belong to the encoder.
        frozen_stages (int): See above. Defaults to -1.
        l2_norm (bool): L2-normalise ``static`` per pixel. Defaults to True.
        eps (float): Lower bound of the norm in the L2 normalisation.
            Defaults to 1e-12.
        init_cfg (dict or list[dict], optional): mmengine init config; see
            above for ``type='Pretrained'``.
    """

    def __init__(self,
                 backbone: dict,
                 frozen_stages: int = -1,
                 l2_norm: bool = True,
                 eps: float = 1e-12,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        if kwargs:
            raise removed_checkpoint_error('Swin3dEncoder', kwargs,
                                           'backbone.')
        super().__init__(init_cfg=init_cfg)
        if (isinstance(frozen_stages, bool)
                or not isinstance(frozen_stages, int)
                or not -1 <= frozen_stages <= NUM_STAGES):
            raise ValueError('Swin3dEncoder: frozen_stages must be an int in '
                             f'[-1, {NUM_STAGES}], got {frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self.l2_norm = l2_norm
        self.eps = eps
        self.backbone = MODELS.build(self._backbone_cfg(backbone,
                                                        frozen_stages))
        self._check_backbone()
        self.out_channels = int(self.backbone.num_features[NUM_STAGES - 1])
        self.in_channels = int(self.backbone.patch_embed.in_channels)

    @staticmethod
    def _backbone_cfg(backbone: dict, frozen_stages: int) -> dict:
        """Copy of the SwinTransformer3D config, cut after stage 3."""
        owner = 'Swin3dEncoder'
        if not isinstance(backbone, dict) or 'type' not in backbone:
            raise TypeError(f'{owner}: backbone must be a config dict with a '
                            "'type' (e.g. 'mmaction.SwinTransformer3D'), got "
                            f'{backbone!r}')
        cfg = copy.deepcopy(dict(backbone))
        for key, want in (('out_indices', (NUM_STAGES - 1, )),
                          ('out_after_downsample', False)):
            given = cfg.get(key, want)
            if isinstance(given, (list, tuple)):
                given = tuple(given)
            if given != want:
                raise ValueError(
                    f'{owner}: backbone.{key}={cfg[key]!r} is not supported;'
                    f' the encoder always stops at the stride-16 stage '
                    f'({key}={want!r})')
            cfg[key] = want
        arch = cfg.get('arch', 'tiny')
        if isinstance(arch, str):
            from mmaction.models.backbones.swin import SwinTransformer3D
            zoo = SwinTransformer3D.arch_zoo
            if arch.lower() not in zoo:
                raise ValueError(f'{owner}: backbone.arch={arch!r} is not one '
                                 f'of {sorted(zoo)} nor a dict')
            arch = zoo[arch.lower()]
        if not isinstance(arch, dict) or set(arch) != {
                'embed_dims', 'depths', 'num_heads'
        }:
            raise ValueError(f'{owner}: backbone.arch must be a name or a '
                             'dict(embed_dims=..., depths=..., num_heads=...),'
                             f' got {arch!r}')
        for key in ('depths', 'num_heads'):
            if len(arch[key]) not in (NUM_STAGES, NUM_STAGES + 1):
                raise ValueError(
                    f'{owner}: backbone.arch.{key} must have 3 or 4 entries '
                    f'(one per stage), got {arch[key]!r}')
        cfg['arch'] = dict(
            embed_dims=arch['embed_dims'],
            depths=list(arch['depths'])[:NUM_STAGES],
            num_heads=list(arch['num_heads'])[:NUM_STAGES])
        if cfg.get('frozen_stages', -1) != -1:
            raise ValueError(
                f'{owner}: set frozen_stages on the encoder, not on the '
                f'backbone (backbone.frozen_stages={cfg["frozen_stages"]!r})')
        cfg['frozen_stages'] = frozen_stages
        pretrained = cfg.get('pretrained')
        if pretrained is None:
            # mmaction's default pretrained2d=True would try to inflate
            # ``None`` in init_weights
            cfg['pretrained'] = None
            cfg['pretrained2d'] = False
        elif not cfg.get('pretrained2d', True):
            raise ValueError(
                f'{owner}: backbone.pretrained with pretrained2d=False loads '
                'a checkpoint with strict=False, which silently loads nothing '
                "from a recognizer checkpoint (keys 'backbone.*'); give the "
                "encoder init_cfg=dict(type='Pretrained', "
                f"checkpoint={pretrained!r}, prefix='backbone.') instead")
        init = cfg.get('init_cfg')
        inits = [init] if isinstance(init, dict) else list(init or [])
        if any(isinstance(c, dict) and c.get('type') == 'Pretrained'
               for c in inits):
            raise ValueError(
                f'{owner}: a Pretrained backbone.init_cfg loads with '
                "strict=False; set init_cfg=dict(type='Pretrained', "
                "checkpoint=..., prefix='backbone.') on the encoder instead, "
                f'got backbone.init_cfg={init!r}')
        return cfg

    def _check_backbone(self) -> None:
        from mmaction.models.backbones.swin import SwinTransformer3D
        if not isinstance(self.backbone, SwinTransformer3D):
            raise TypeError(
                'Swin3dEncoder: backbone must build an mmaction2 '
                f'SwinTransformer3D, got {type(self.backbone).__name__}')

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None,
                        map_location: str = 'cpu') -> LoadResult:
        """Load pretrained weights into the wrapped SwinTransformer3D; what
        :meth:`init_weights` does for each ``Pretrained`` init_cfg entry.

        Args:
            checkpoint (str): path (or URL understood by mmengine) of a
                checkpoint: a dict with a ``state_dict``, or the state dict
                itself; a leading ``module.`` (DataParallel) is ignored.
            prefix (str, optional): keep only the keys under it, removed
                (``'backbone.'`` for an mmaction2 recognizer checkpoint).
            map_location (str): where to load the tensors.

        Returns:
            LoadResult: names relative to the backbone; ``skipped_keys``
            are the weights of the parts not built.

        Raises:
            PretrainedMismatchError (a ValueError): no key under
                ``prefix``, fewer than ``MIN_LOADED_FRACTION`` of the
                backbone's tensors, or a tensor of another shape.
        """
        owner = type(self).__name__
        state = read_state_dict(checkpoint, prefix, map_location, owner)
        return load_checked_state(
            self.backbone,
            state,
            checkpoint,
            owner,
            min_fraction=MIN_LOADED_FRACTION,
            skip=_not_built)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode a clip.

        Args:
            x (Tensor): Video clip, (B, in_channels, T, H, W).

        Returns:
            tuple[Tensor]: ``feat`` (B, C, T', H/16, W/16), the third
            stage's features before temporal pooling, and ``static`` =
            F_V^S (B, C, H/16, W/16), their temporal mean, L2-normalised
            over channels at every pixel when ``l2_norm``.
        """
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'Swin3dEncoder: expected a clip (B, {self.in_channels}, T, '
                f'H, W), got {tuple(x.shape)}')
        feat = self.backbone(x)
        static = feat.mean(dim=2)
        if self.l2_norm:
            static = F.normalize(static, p=2, dim=1, eps=self.eps)
        return feat, static
