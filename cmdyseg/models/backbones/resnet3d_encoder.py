# Copyright (c) cmdyseg contributors. All rights reserved.
"""Video encoder adapter around mmaction2's I3D (``ResNet3d``).

CMDyConv's video encoder is ``F_V^S = L2(Avg_t(pI3D(V)))`` (SPEC item 1):
I3D cut at mixed_4f, averaged over time and L2-normalised at every pixel.
With mmaction2's I3D-ResNet the stand-in for mixed_4f is ``layer3``
(1024 channels for R50, spatial stride 16); the stem, ``layer1`` and
``layer2`` play the part of the frozen layers up to maxpool3d_4a.
"""
import copy
import re
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from cmdyseg.registry import MODELS
from .pretrained import (CheckedPretrainedMixin, LoadResult,
                         load_checked_state, read_state_dict,
                         removed_checkpoint_error)

# The encoder always ends at layer3 (index 2 of mmaction's 4 stages).
NUM_STAGES = 3
# Per-stage settings that must have exactly ``num_stages`` entries in
# mmaction's ResNet3d; a 4-entry value (the full network) is cut to 3.
PER_STAGE_KEYS = ('spatial_strides', 'temporal_strides', 'dilations',
                  'stage_blocks')
PER_STAGE_DEFAULTS = dict(
    spatial_strides=(1, 2, 2), temporal_strides=(1, 1, 1),
    dilations=(1, 1, 1))
# A checkpoint holding fewer of the backbone's tensors than this is for
# another network (or is read with the wrong prefix): an error. Above it,
# the missing tensors are warnings (e.g. a checkpoint of an older
# mmaction2 lacking a buffer).
MIN_LOADED_FRACTION = 0.5
#: early maps the encoder can return after its pair (``skips``)
SKIP_STAGES = ('conv1', 'layer1')
_STAGE_KEY = re.compile(r'layer(\d+)\.')


class FrameCache:
    """What :meth:`ResNet3dEncoder.forward_windows` computed for one video:
    each frame's stem and layer1 maps (by frame index) and each layer3
    step (by the frame indices it is made of: a pair under pool2).
    Sliding windows share most of their frames, so a window mostly reads
    what earlier ones computed; :meth:`forget` drops what no later window
    needs (windows visited in order of their first frame)."""

    def __init__(self):
        self.frames: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}
        self.steps: Dict[Tuple[int, ...], torch.Tensor] = {}

    def forget(self, before: int) -> None:
        """Drop the frames and steps that use a frame ``< before``."""
        self.frames = {t: v for t, v in self.frames.items() if t >= before}
        self.steps = {k: v for k, v in self.steps.items() if min(k) >= before}


def _beyond_layer3(key: str) -> bool:
    match = _STAGE_KEY.match(key)
    return match is not None and int(match.group(1)) > NUM_STAGES


@MODELS.register_module()
class ResNet3dEncoder(CheckedPretrainedMixin, BaseModule):
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

    Pretrained weights: ``init_cfg=dict(type='Pretrained', checkpoint=PATH,
    prefix='backbone.')`` loads the ``backbone.*`` weights of an mmaction2
    *recognizer* checkpoint (e.g. I3D-R50 on Kinetics-400) into the wrapped
    ResNet3d: after removing ``prefix`` the keys are those of ``backbone``
    (``conv1.conv.weight``, ...), not of this encoder. Weights of stages
    after layer3 are skipped on purpose. Unlike mmengine's own
    ``PretrainedInit`` (``strict=False``) a checkpoint holding less than
    ``MIN_LOADED_FRACTION`` of the backbone's tensors, or a tensor of
    another shape, is an error naming the file (see
    :meth:`load_pretrained`). :meth:`init_weights` runs mmaction2's own
    initialisation of the backbone first, then the other ``init_cfg``
    entries (Kaiming, ...), then ``Pretrained``; build the model and call
    ``init_weights()`` -- mmengine's Runner does that before training.
    Frozen stages stay frozen.

    Args:
        backbone (dict): Config of an mmaction2 ``ResNet3d`` (or subclass),
            e.g. mmaction2's I3D-R50: ``dict(type='mmaction.ResNet3d',
            depth=50, pretrained=None, conv1_kernel=(5, 7, 7),
            conv1_stride_t=2, pool1_stride_t=2, inflate=((1, 1, 1), (1, 0,
            1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)), zero_init_residual=False)``.
            ``num_stages``/``out_indices`` are set here (other values are
            an error); 4-entry per-stage settings are cut to 3. Its
            ``frozen_stages`` and ``init_cfg`` must stay unset (use the
            encoder's arguments: ResNet3d's ``init_weights`` ignores
            ``init_cfg``), and ``pretrained`` may only name a 2-D model to
            inflate (``pretrained2d=True``): for 3-D weights use the
            encoder's ``init_cfg``.
        frozen_stages (int): Number of residual stages frozen together with
            the stem; -1 freezes nothing, 0 only the stem, 3 everything.
            Defaults to 2.
        l2_norm (bool): L2-normalise ``static`` per pixel. Defaults to True.
        skips (sequence[str]): Early maps to return after the pair, in
            this order, each averaged over time, for a neck with
            ``skip_channels`` (a finer decode than the paper's; see
            :class:`~cmdyseg.models.necks.TemporalDeconNeck`): ``'layer1'``
            (layer1's output after the temporal pool2, (B, C1, H/4, W/4):
            F_V^M's resolution) and ``'conv1'`` (the stem convolution's,
            before the max pool, (B, C0, H/2, W/2)). Their channels are
            :attr:`skip_channels`. Defaults to () (the paper's pair).
        skip_time (bool): Return the early maps with their time axis, (B,
            C, T_s, H_s, W_s), not averaged (for a neck that also runs a
            ConvLSTM on one of them: ``skip_lstm``). Defaults to False.
        init_cfg (dict or list[dict], optional): mmengine init config; see
            above for ``type='Pretrained'``.

    The former ``checkpoint=`` argument is refused with a ``TypeError``
    that spells out the ``init_cfg`` replacement.
    """

    def __init__(self,
                 backbone: dict,
                 frozen_stages: int = 2,
                 l2_norm: bool = True,
                 eps: float = 1e-12,
                 skips: Sequence[str] = (),
                 skip_time: bool = False,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        if kwargs:
            raise removed_checkpoint_error('ResNet3dEncoder', kwargs,
                                           'backbone.')
        super().__init__(init_cfg=init_cfg)
        if (not isinstance(frozen_stages, int)
                or not -1 <= frozen_stages <= NUM_STAGES):
            raise ValueError('ResNet3dEncoder: frozen_stages must be an int '
                             f'in [-1, {NUM_STAGES}], got {frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self.l2_norm = l2_norm
        self.eps = eps
        if isinstance(skips, str):
            skips = (skips, )
        skips = tuple(skips)
        bad = [s for s in skips if s not in SKIP_STAGES]
        if bad or len(set(skips)) != len(skips):
            raise ValueError(
                f'ResNet3dEncoder: skips={skips!r} must name distinct maps '
                f'out of {SKIP_STAGES}')
        self.skips = skips
        self.skip_time = bool(skip_time)
        self.backbone = MODELS.build(self._backbone_cfg(backbone))
        self._check_backbone()
        self.out_channels = int(self.backbone.feat_dim)
        bb = self.backbone
        # the stem's channels; layer1's: planes * block expansion
        channels = dict(conv1=int(bb.base_channels),
                        layer1=int(bb.base_channels * bb.block.expansion))
        self.skip_channels = tuple(channels[s] for s in skips)
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
                    f'({key}={want!r}; the encoder\'s skips= adds earlier '
                    'maps)')
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
                "give the encoder init_cfg=dict(type='Pretrained', "
                f"checkpoint={cfg['pretrained']!r}, prefix='backbone.') "
                'instead')
        if cfg.get('init_cfg') is not None:
            raise ValueError(
                'ResNet3dEncoder: backbone.init_cfg is ignored by mmaction2 '
                "ResNet3d's init_weights; set init_cfg on the encoder instead "
                "(for a recognizer checkpoint: init_cfg=dict(type="
                "'Pretrained', checkpoint=..., prefix='backbone.')), got "
                f"backbone.init_cfg={cfg['init_cfg']!r}")
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

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None,
                        map_location: str = 'cpu') -> LoadResult:
        """Load pretrained weights into the wrapped ResNet3d; what
        :meth:`init_weights` does for each ``Pretrained`` init_cfg entry.

        Args:
            checkpoint (str): path (or URL understood by mmengine) of a
                checkpoint: a dict with a ``state_dict``, or the state dict
                itself; a leading ``module.`` (DataParallel) is ignored.
            prefix (str, optional): keep only the keys under it, removed
                (``'backbone.'`` for an mmaction2 recognizer checkpoint);
                the remaining keys must be the backbone's.
            map_location (str): where to load the tensors. Defaults to cpu.

        Returns:
            LoadResult: names relative to the backbone; ``skipped_keys``
            are the weights of stages after layer3, dropped on purpose.
            Missing and unexpected keys are also logged as warnings.

        Raises:
            PretrainedMismatchError (a ValueError): no key under
                ``prefix``, fewer than ``MIN_LOADED_FRACTION`` of the
                backbone's tensors found, or a tensor of another shape
                (e.g. an R18 checkpoint for an R50 backbone); the message
                names the file and what it holds.
        """
        owner = type(self).__name__
        state = read_state_dict(checkpoint, prefix, map_location, owner)
        return load_checked_state(
            self.backbone,
            state,
            checkpoint,
            owner,
            min_fraction=MIN_LOADED_FRACTION,
            skip=_beyond_layer3)

    def forward(self,
                x: torch.Tensor,
                centre_only: bool = False) -> Tuple[torch.Tensor, ...]:
        """Encode a clip.

        Args:
            x (Tensor): Video clip, (B, in_channels, T, H, W).
            centre_only (bool): Return only the early maps' centre steps
                (the ``skips``, ``(B, C, H', W')`` each, equal to the maps'
                step ``T_s // 2``), computed from the few frames around the
                clip's centre that they depend on: the fast mode's exact
                early maps (:meth:`forward_centre`). Defaults to False.

        Returns:
            tuple[Tensor]: ``feat`` (B, C, T', H/16, W/16), the layer3
            features before temporal pooling, and ``static`` = F_V^S
            (B, C, H/16, W/16), their temporal mean, L2-normalised over
            channels at every pixel when ``l2_norm``; then the temporal
            means of the maps named by ``skips`` (with ``skip_time``: the
            maps themselves), in that order.
        """
        in_channels = self.backbone.in_channels
        if x.dim() != 5 or x.shape[1] != in_channels:
            raise ValueError(
                f'ResNet3dEncoder: expected a clip (B, {in_channels}, T, H, '
                f'W), got {tuple(x.shape)}')
        if centre_only:
            return self.forward_centre(x)
        taps = {}
        if self.skips:
            feat = self._forward_tapped(x, taps)
        else:
            feat = self.backbone(x)
        return self._outputs(feat, taps)

    def _outputs(self, feat: torch.Tensor,
                 taps: dict) -> Tuple[torch.Tensor, ...]:
        """``forward``'s outputs from layer3's ``feat`` and the early maps
        ``taps``: feat, F_V^S, then the ``skips``."""
        static = feat.mean(dim=2)
        if self.l2_norm:
            static = F.normalize(static, p=2, dim=1, eps=self.eps)
        return (feat, static) + tuple(
            taps[s] if self.skip_time else taps[s].mean(dim=2)
            for s in self.skips)

    def _forward_tapped(self, x: torch.Tensor, taps: dict) -> torch.Tensor:
        """mmaction2's ``ResNet3d.forward`` (cut at layer3), keeping the
        stem convolution's and layer1's outputs in ``taps``."""
        bb = self.backbone
        x = bb.conv1(x)
        taps['conv1'] = x
        if bb.with_pool1:
            x = bb.maxpool(x)
        for i, name in enumerate(bb.res_layers):
            x = getattr(bb, name)(x)
            if i == 0:
                if bb.with_pool2:
                    x = bb.pool2(x)
                taps['layer1'] = x
        return x

    def centre_support(self) -> Optional[str]:
        """Why :meth:`forward_centre` cannot compute this encoder's early
        maps from the frames around the centre (None when it can).

        It needs ``skip_time`` (the maps keep their steps) and a stem and
        layer1 that keep one step per frame and mix frames only in the
        stem convolution: ``conv1_stride_t=1`` with temporal padding
        ``kernel // 2``, a pool1 of temporal size and stride 1, layer1
        not inflated (``inflate=((0, ...), ...)``); pool2 may halve the
        steps."""
        if not self.skips:
            return 'the encoder has no early maps (skips=())'
        if not self.skip_time:
            return ('its early maps are averaged over the clip '
                    '(skip_time=False), not taken per step')
        bb = self.backbone
        conv = bb.conv1.conv
        if (conv.stride[0] != 1 or conv.dilation[0] != 1
                or conv.padding[0] != conv.kernel_size[0] // 2
                or tuple(bb.conv1.order) != ('conv', 'norm', 'act')):
            return ('its stem convolution is not temporally stride 1 with '
                    f'"same" padding (kernel {conv.kernel_size}, stride '
                    f'{conv.stride}, padding {conv.padding})')
        why = self._pool_support('pool1')
        if why is not None:
            return why
        if 'layer1' in self.skips:
            for name, m in bb.layer1.named_modules():
                if isinstance(m, torch.nn.Conv3d) and (
                        m.kernel_size[0] != 1 or m.stride[0] != 1):
                    return (f'its layer1 is inflated in time ({name}: '
                            f'kernel {m.kernel_size}, stride {m.stride})')
            why = self._pool_support('pool2')
            if why is not None:
                return why
        return None

    def frame_support(self) -> Optional[str]:
        """Why :meth:`forward_windows` cannot share this encoder's work
        between overlapping clips (None when it can): it needs an encoder
        in which no convolution mixes or skips frames (every temporal
        kernel and stride 1: a 2-D network applied to each frame, as the
        main job's), a pool1 of temporal size and stride 1, and a pool2
        that is absent or ``(2, 1, 1)``."""
        bb = self.backbone
        for name, m in bb.named_modules():
            if isinstance(m, torch.nn.Conv3d) and (
                    m.kernel_size[0] != 1 or m.stride[0] != 1
                    or m.padding[0] != 0):
                return (f'its {name} mixes or skips frames (kernel '
                        f'{m.kernel_size}, stride {m.stride})')
        return self._pool_support('pool1') or self._pool_support('pool2')

    def _pool_support(self, pool: str) -> Optional[str]:
        """Why the encoder's ``pool1`` / ``pool2`` stops its maps being
        computed per frame (None when it does not): pool1 must keep one
        step per frame, pool2 may only pair consecutive steps."""
        bb = self.backbone
        if pool == 'pool1' and bb.with_pool1 and (
                bb.maxpool.kernel_size[0] != 1 or bb.maxpool.stride[0] != 1):
            return ('its pool1 mixes or skips frames (kernel '
                    f'{bb.maxpool.kernel_size}, stride {bb.maxpool.stride})')
        if pool == 'pool2' and bb.with_pool2 and (
                tuple(bb.pool2.kernel_size) != (2, 1, 1)
                or tuple(bb.pool2.stride) != (2, 1, 1)):
            return (f'its pool2 is not (2, 1, 1) (kernel '
                    f'{bb.pool2.kernel_size})')
        return None

    def forward_windows(self, load: Callable[[np.ndarray], torch.Tensor],
                        windows: np.ndarray,
                        cache: Optional[FrameCache] = None,
                        centre_only: bool = False
                        ) -> Tuple[torch.Tensor, ...]:
        """``forward`` of the clips ``frames[windows]`` (B, L frame
        indices each), each frame's maps computed once and shared between
        the clips (and with earlier calls through ``cache``): the stem,
        pool1 and layer1 run on each frame not in the cache, layer2 and
        layer3 on each step (a pair of frames under pool2) not in it.
        Equal to ``forward`` on the stacked clips (tested) where
        :meth:`frame_support` says it can; in eval mode only (BatchNorm
        in training mode normalises by the batch).

        Args:
            load (callable): frame indices (n, ) -> their normalised frames
                (n, 3, 1, H, W), as the clips would hold them.
            windows (np.ndarray): (B, L) frame indices of the clips.
            cache (FrameCache, optional): shared between calls on one
                video; a new one when None.
            centre_only (bool): Return only the early maps' centre steps,
                as ``forward(x, centre_only=True)`` does (layer2 and
                layer3 do not run). Defaults to False.
        """
        why = self.frame_support()
        if why is not None:
            raise ValueError(f'ResNet3dEncoder: the clips cannot share '
                             f'their frames: {why}')
        if self.training:
            raise ValueError('ResNet3dEncoder.forward_windows: eval mode '
                             'only (BatchNorm in training mode normalises '
                             'by the batch)')
        cache = FrameCache() if cache is None else cache
        bb = self.backbone
        windows = np.asarray(windows)
        if centre_only:
            return self._centre_from_cache(load, windows, cache)
        self._cache_frames(load, windows.ravel(), cache)

        def gather(k: int) -> torch.Tensor:  # (B, C, L, h, w)
            return torch.stack([
                torch.cat([cache.frames[t][k] for t in w.tolist()], dim=1)
                for w in windows])

        taps = dict(conv1=gather(0)) if 'conv1' in self.skips else {}
        x = gather(1)
        if bb.with_pool2:
            x = bb.pool2(x)
        taps['layer1'] = x
        group = 2 if bb.with_pool2 else 1
        keys = [[tuple(w[group * s:group * (s + 1)].tolist())
                 for s in range(x.shape[2])] for w in windows]
        first = {}  # a step not in the cache -> where x holds it
        for b, ks in enumerate(keys):
            for s, k in enumerate(ks):
                if k not in cache.steps:
                    first.setdefault(k, (b, s))
        if first:
            z = torch.stack([x[b, :, s:s + 1] for b, s in first.values()])
            for name in bb.res_layers[1:]:
                z = getattr(bb, name)(z)
            for i, k in enumerate(first):
                cache.steps[k] = z[i]
        feat = torch.stack(
            [torch.cat([cache.steps[k] for k in ks], dim=1) for ks in keys])
        return self._outputs(feat, taps)

    def _cache_frames(self, load, frames: np.ndarray,
                      cache: FrameCache) -> None:
        """The stem and layer1 maps of the frames not in the cache."""
        new = sorted(set(frames.tolist()) - cache.frames.keys())
        if not new:
            return
        bb = self.backbone
        stem = bb.conv1(load(np.asarray(new)))
        y = bb.layer1(bb.maxpool(stem) if bb.with_pool1 else stem)
        for i, t in enumerate(new):
            cache.frames[t] = (stem[i], y[i])

    def _centre_from_cache(self, load, windows: np.ndarray,
                           cache: FrameCache) -> Tuple[torch.Tensor, ...]:
        """``forward_windows(..., centre_only=True)``: the early maps'
        centre steps read from the frames they are made of -- the stem's
        step ``L // 2`` is frame ``w[L // 2]``'s; layer1's after pool2 is
        the maximum over the frames of its pair -- without gathering the
        windows."""
        bb = self.backbone
        length = windows.shape[1]
        if bb.with_pool2:
            c = (length // 2) // 2
            layer1_frames = windows[:, [2 * c, 2 * c + 1]]
        else:
            layer1_frames = windows[:, [length // 2]]
        needed = {'conv1': windows[:, [length // 2]], 'layer1': layer1_frames}
        self._cache_frames(
            load, np.concatenate([needed[s].ravel() for s in self.skips]),
            cache)
        out = []
        for s in self.skips:
            k = 0 if s == 'conv1' else 1
            maps = [torch.stack([cache.frames[t][k][:, 0] for t in col])
                    for col in needed[s].T.tolist()]
            out.append(maps[0] if len(maps) == 1 else torch.maximum(*maps))
        return tuple(out)

    def forward_centre(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The early maps' centre steps of clips ``x`` (B, 3, T, H, W),
        computed from the frames around the centre only: the stem
        convolution on the one or two steps that the centre steps need
        (zero padding where the clip's is), then pool1 and layer1 on those
        steps. Equal to ``forward(x)[2:]`` at step ``T_s // 2`` of each map
        (tested) at a fraction of the cost: 2 of the clip's T steps for
        the tiny config. Raises ValueError where :meth:`centre_support`
        says it cannot."""
        why = self.centre_support()
        if why is not None:
            raise ValueError(f'ResNet3dEncoder: the early maps cannot be '
                             f'computed per frame: {why}')
        bb = self.backbone
        num_steps = x.shape[2]
        # the stem's steps each early map's centre step is made from
        pool2 = 'layer1' in self.skips and bb.with_pool2
        centre1 = (num_steps // 2) // 2 if pool2 else num_steps // 2
        needs = dict(conv1=[num_steps // 2],
                     layer1=[2 * centre1, 2 * centre1 + 1] if pool2 else
                     [centre1])
        steps = sorted({t for s in self.skips for t in needs[s]})
        lo, hi = steps[0], steps[-1]
        conv = bb.conv1.conv
        pad_t = conv.padding[0]
        # the stem convolution on steps lo..hi: the clip padded as the
        # convolution pads it, cut to those steps' frames, no time padding
        xp = F.pad(x, (0, 0, 0, 0, pad_t, pad_t))[:, :, lo:hi + 2 * pad_t + 1]
        y = F.conv3d(xp, conv.weight, conv.bias, conv.stride,
                     (0, ) + tuple(conv.padding[1:]), conv.dilation,
                     conv.groups)
        if bb.conv1.with_norm:
            y = bb.conv1.norm(y)
        if bb.conv1.with_activation:
            y = bb.conv1.activate(y)
        taps = dict(conv1=y[:, :, num_steps // 2 - lo])
        if 'layer1' in self.skips:
            z = bb.maxpool(y) if bb.with_pool1 else y
            first = needs['layer1'][0] - lo
            z = bb.layer1(z[:, :, first:first + len(needs['layer1'])])
            taps['layer1'] = (bb.pool2(z) if pool2 else z)[:, :, 0]
        return tuple(taps[s] for s in self.skips)
