# Copyright (c) cmdyseg contributors. All rights reserved.
"""Decon upsampling and the temporal evolution encoder (CMDyConv eq. 15).

The neck turns the video encoder's output into the medium-resolution video
feature ``F_V^M`` (x4 the encoder's resolution) on which the dynamic
convolution heads operate.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule

from cmdyseg.registry import MODELS
from .conv_lstm import ConvLSTM


@MODELS.register_module()
class Decon(BaseModule):
    """The paper's deconvolution network: x4 upsampling.

    ``ConvTranspose2d(kernel 8, stride 4, padding 2)`` -> activation ->
    ``Conv2d(kernel 3, padding 1)`` -> optional output activation. An
    ``(h, w)`` map becomes ``(4h, 4w)`` exactly (32x32 -> 128x128 in the
    paper).

    Activation choice (the paper names only the two layers): a ReLU between
    them, so that Decon is a two-layer network rather than a product of two
    linear maps, and **no** activation after the 3x3 conv, so that ``F_V^M``
    stays signed like the L2-normalised ``F_V^S`` it comes from (the
    dynamic kernels that read it are tanh-valued, i.e. signed, too).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (of both layers).
        act_cfg (dict, optional): Activation between the transposed conv and
            the 3x3 conv; None for none. Defaults to ``dict(type='ReLU')``.
        out_act_cfg (dict, optional): Activation after the 3x3 conv.
            Defaults to None.
        init_cfg (dict or list[dict], optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 out_act_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.deconv = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size=8, stride=4, padding=2)
        self.act = (
            build_activation_layer(act_cfg)
            if act_cfg is not None else nn.Identity())
        self.conv = nn.Conv2d(
            out_channels, out_channels, kernel_size=3, padding=1)
        self.out_act = (
            build_activation_layer(out_act_cfg)
            if out_act_cfg is not None else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, h, w) -> (B, out_channels, 4h, 4w)."""
        return self.out_act(self.conv(self.act(self.deconv(x))))


@MODELS.register_module()
class TemporalDeconNeck(BaseModule):
    """Video neck: ``F_V^M`` from the video encoder's two outputs.

    With the temporal branch (eq. 15)::

        F_V^M = [Decon(F_V^S), Decon(CLSTM(pI3D(V)))]   (channel concat)

    where each Decon outputs ``out_channels // 2`` channels so that
    ``F_V^M`` keeps ``out_channels`` (= D_M) channels (SPEC item 3,
    **[choice]**). Without it (``use_temporal=False``)::

        F_V^M = Decon(F_V^S)                             (out_channels)

    With ``skip_channels`` (not in the paper: a finer decode for small
    inputs) the encoder gives early maps after its pair, coarse to fine
    (``ResNet3dEncoder(skips=('layer1', 'conv1'))``: layer1 at F_V^M's
    resolution 4h x 4w, the stem at 8h x 8w), and each is added through a
    1x1 convolution, top-down as in an FPN: a map at the current
    resolution is added to it, a map at twice the resolution is added to
    the bilinear x2 upsampling of what is there::

        F_V^M = [...] + Conv1x1(layer1)              (4h x 4w)
        F_V^M = Up2(F_V^M) + Conv1x1(conv1)          (8h x 8w)

    An early map may keep its time axis (B, C, T, H, W)
    (``ResNet3dEncoder(skip_time=True)``): for the addition above it is
    averaged over time (``skip_reduce='mean'``) or its centre step ``T //
    2`` is taken (``'centre'``: the clip's annotated frame, where a moving
    actor is, not the trail it leaves in the mean), and with
    ``skip_lstm=dict(index=i, channels=k)`` and the temporal branch on,
    map ``i`` also runs through a second ConvLSTM (hidden ``k``) whose
    last hidden state is added through a 1x1
    convolution at that map's resolution -- the temporal branch at a
    resolution where actors are several cells wide (``use_temporal=False``
    removes both ConvLSTMs)::

        F_V^M = [...] + Conv1x1(Avg_t(layer1)) + Conv1x1(CLSTM(layer1))

    At the tiny 64 x 64 input the encoder's map is 4 x 4, coarser than
    the actors, so the decoded F_V^M cannot tell neighbouring actors apart
    by appearance, and a 16 x 16 response cannot draw their outline
    (measured in configs/cmdyconv/README.md).

    Args:
        in_channels (int): Channels C of ``feat`` and ``static``.
        out_channels (int): Channels of ``F_V^M`` (D_M). Must be even when
            ``use_temporal``. Defaults to 256.
        use_temporal (bool): Add the ConvLSTM branch. Defaults to True.
        lstm_channels (int, optional): Hidden channels of the ConvLSTM.
            None means ``lstm_input_proj`` when that is set, otherwise
            ``in_channels`` (the paper's "same hidden dimension as input").
        lstm_kernel_size (int): Kernel size of the ConvLSTM gate convs.
            Defaults to 3.
        lstm_input_proj (int, optional): If set, project the ConvLSTM input
            to this many channels with a 1x1x1 conv. Defaults to None.
        lstm_peephole (bool): Peephole terms of eq. 14. Defaults to True.
        act_cfg (dict, optional): Activation inside each Decon (see
            :class:`Decon`). Defaults to ``dict(type='ReLU')``.
        out_act_cfg (dict, optional): Activation after each Decon. Defaults
            to None.
        skip_channels (int | sequence[int], optional): Channels of the
            encoder's early maps after its pair, in the order it gives them
            (coarse to fine); None or () (the paper) takes the pair
            ``(feat, static)`` only. Defaults to None.
        skip_reduce (str): ``'mean'`` or ``'centre'``: how an early map
            with a time axis is added (see above). Defaults to 'mean'.
        skip_lstm (dict, optional): ``dict(index=i, channels=k)``: the
            ConvLSTM on early map ``i`` (which must keep its time axis),
            see above; ``frame_diff=True`` feeds it ``[x_t, x_t -
            x_(t-1)]`` (zero difference at the first step), the change
            between steps as an input of its own. Defaults to None.
        init_cfg (dict or list[dict], optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 256,
                 use_temporal: bool = True,
                 lstm_channels: Optional[int] = None,
                 lstm_kernel_size: int = 3,
                 lstm_input_proj: Optional[int] = None,
                 lstm_peephole: bool = True,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 out_act_cfg: Optional[dict] = None,
                 skip_channels: Optional[int] = None,
                 skip_reduce: str = 'mean',
                 skip_lstm: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if skip_channels is None:
            skip_channels = ()
        elif isinstance(skip_channels, int):
            skip_channels = (skip_channels, )
        skip_channels = tuple(skip_channels)
        if not all(isinstance(c, int) and c >= 1 for c in skip_channels):
            raise ValueError('TemporalDeconNeck: skip_channels must be None, '
                             'a positive int or a sequence of them, got '
                             f'{skip_channels!r}')
        self.skip_channels = skip_channels
        self.skip_projs = nn.ModuleList(
            nn.Conv2d(c, out_channels, kernel_size=1) for c in skip_channels)
        if skip_reduce not in ('mean', 'centre'):
            raise ValueError("TemporalDeconNeck: skip_reduce must be 'mean' "
                             f"or 'centre', got {skip_reduce!r}")
        self.skip_reduce = skip_reduce
        self.skip_lstm_index = None
        self.skip_lstm_diff = False
        if skip_lstm is not None:
            if (not isinstance(skip_lstm, dict)
                    or not {'index', 'channels'} <= set(skip_lstm) <=
                    {'index', 'channels', 'frame_diff'}
                    or skip_lstm['index'] not in range(len(skip_channels))
                    or not isinstance(skip_lstm['channels'], int)
                    or skip_lstm['channels'] < 1
                    or not isinstance(skip_lstm.get('frame_diff', False),
                                      bool)):
                raise ValueError(
                    'TemporalDeconNeck: skip_lstm must be dict(index=i, '
                    'channels=k[, frame_diff=bool]) with i an index into '
                    f'skip_channels {skip_channels} and k a positive int, '
                    f'got {skip_lstm!r}')
            if use_temporal:
                self.skip_lstm_index = skip_lstm['index']
                self.skip_lstm_diff = skip_lstm.get('frame_diff', False)
                self.skip_clstm = ConvLSTM(
                    skip_channels[self.skip_lstm_index] *
                    (2 if self.skip_lstm_diff else 1),
                    skip_lstm['channels'],
                    kernel_size=lstm_kernel_size,
                    peephole=lstm_peephole)
                self.skip_lstm_proj = nn.Conv2d(
                    skip_lstm['channels'], out_channels, kernel_size=1)
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError('TemporalDeconNeck: in_channels must be a '
                             f'positive int, got {in_channels!r}')
        if not isinstance(out_channels, int) or out_channels < 1:
            raise ValueError('TemporalDeconNeck: out_channels must be a '
                             f'positive int, got {out_channels!r}')
        if use_temporal and out_channels % 2:
            raise ValueError(
                'TemporalDeconNeck: out_channels must be even with '
                'use_temporal=True (each Decon branch gives out_channels // '
                f'2 channels), got {out_channels}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.use_temporal = use_temporal

        branch_channels = out_channels // 2 if use_temporal else out_channels
        self.static_decon = Decon(
            in_channels,
            branch_channels,
            act_cfg=act_cfg,
            out_act_cfg=out_act_cfg)
        if not use_temporal:
            self.lstm_input_proj = None
            self.lstm_channels = None
            return

        lstm_in = in_channels
        if lstm_input_proj is not None:
            if not isinstance(lstm_input_proj, int) or lstm_input_proj < 1:
                raise ValueError('TemporalDeconNeck: lstm_input_proj must be '
                                 f'None or a positive int, got '
                                 f'{lstm_input_proj!r}')
            self.lstm_input_proj = nn.Conv3d(
                in_channels, lstm_input_proj, kernel_size=1)
            lstm_in = lstm_input_proj
        else:
            self.lstm_input_proj = None
        if lstm_channels is None:
            lstm_channels = lstm_in
        self.lstm_channels = lstm_channels
        self.clstm = ConvLSTM(
            lstm_in,
            lstm_channels,
            kernel_size=lstm_kernel_size,
            peephole=lstm_peephole)
        self.temporal_decon = Decon(
            lstm_channels,
            branch_channels,
            act_cfg=act_cfg,
            out_act_cfg=out_act_cfg)

    def _check_inputs(self, inputs: Sequence[torch.Tensor]):
        want = 2 + len(self.skip_channels)
        if not isinstance(inputs, (tuple, list)) or len(inputs) != want:
            what = type(inputs).__name__
            if isinstance(inputs, (tuple, list)):
                what += f' of length {len(inputs)}'
            expected = ('the pair (feat, static)' if want == 2 else
                        f'(feat, static) and {want - 2} early map(s) '
                        f'(skip_channels={self.skip_channels}: give the '
                        'encoder skips=...)')
            raise TypeError(f'TemporalDeconNeck: inputs must be {expected} '
                            f'of the video encoder, got {what}')
        feat, static = inputs[:2]
        c = self.in_channels
        if static.dim() != 4 or static.shape[1] != c:
            raise ValueError(f'TemporalDeconNeck: static must be (B, {c}, h, '
                             f'w), got {tuple(static.shape)}')
        if self.use_temporal:
            if feat.dim() != 5 or feat.shape[1] != c:
                raise ValueError('TemporalDeconNeck: feat must be (B, '
                                 f'{c}, T, h, w), got {tuple(feat.shape)}')
            if (feat.shape[0] != static.shape[0]
                    or feat.shape[-2:] != static.shape[-2:]):
                raise ValueError(
                    'TemporalDeconNeck: feat (B, C, T, h, w) '
                    f'{tuple(feat.shape)} and static (B, C, h, w) '
                    f'{tuple(static.shape)} disagree in B or (h, w)')
        h, w = (4 * n for n in static.shape[-2:])
        for i, (skip, ch) in enumerate(zip(inputs[2:], self.skip_channels)):
            shape = tuple(skip.shape)
            dims = (5, ) if i == self.skip_lstm_index else (4, 5)
            if len(shape) in dims and shape[:2] == (static.shape[0], ch) \
                    and shape[-2:] in ((h, w), (2 * h, 2 * w)):
                h, w = shape[-2:]
                continue
            what = ('(B, C, T, H, W) (its ConvLSTM needs the time axis: '
                    'give the encoder skip_time=True)'
                    if dims == (5, ) else '(B, C, H, W) or (B, C, T, H, W)')
            raise ValueError(
                f'TemporalDeconNeck: early map {i} must be {what} with C = '
                f'{ch} and (H, W) = {(h, w)} or {(2 * h, 2 * w)} (the '
                'resolution so far or twice it; static '
                f'{tuple(static.shape)} decodes to 4h x 4w), got {shape}')
        return feat, static

    def forward(self, inputs: Sequence[torch.Tensor],
                part: str = 'all'):
        """Compute ``F_V^M``.

        Args:
            inputs (tuple[Tensor]): ``(feat, static)`` from the video
                encoder: ``feat`` = pI3D(V), (B, C, T', h, w) (not used
                without the temporal branch) and ``static`` = F_V^S,
                (B, C, h, w); with ``skip_channels`` then the early maps
                (see above). With ``part='early'``: the early maps only.
            part (str): ``'all'`` (default): F_V^M. ``'split'``: the pair
                ``(deep, early)`` with ``F_V^M = deep + early`` (equal up
                to rounding: everything after the pair is linear), where
                ``early`` is the early maps' 1x1 projections carried
                through the upsampling, None without early maps, and
                ``deep`` the rest (the pair's Decons and the early
                ConvLSTM). ``'early'``: that ``early`` alone from the early
                maps (``(B, C, H, W)`` each, e.g. the encoder's
                ``centre_only`` maps; ``(B, C, T, H, W)`` are reduced as
                ``skip_reduce`` says). The fast mode interpolates ``deep``
                between encoded frames and computes ``early`` per frame.

        Returns:
            Tensor: F_V^M, (B, out_channels, 4h, 4w) (or the resolution
            of the finest early map); with the temporal branch the first
            ``out_channels // 2`` channels of the pair's part come from
            ``static``, the rest from the ConvLSTM. A pair for
            ``'split'``, see above.
        """
        if part == 'early':
            return self._decode(None, inputs, lstm=False, proj=True)
        if part not in ('all', 'split'):
            raise ValueError("TemporalDeconNeck: part must be 'all', "
                             f"'split' or 'early', got {part!r}")
        feat, static = self._check_inputs(inputs)
        out = self.static_decon(static)
        if self.use_temporal:
            if self.lstm_input_proj is not None:
                feat = self.lstm_input_proj(feat)
            temporal = self.temporal_decon(self.clstm(feat))
            out = torch.cat([out, temporal], dim=1)
        skips = inputs[2:]
        if part == 'all':
            return self._decode(out, skips, lstm=True, proj=True)
        return (self._decode(out, skips, lstm=True, proj=False),
                self._decode(None, skips, lstm=False, proj=True))

    def _decode(self, out: Optional[torch.Tensor],
                skips: Sequence[torch.Tensor], lstm: bool,
                proj: bool) -> Optional[torch.Tensor]:
        """The top-down pass over the early maps from ``out`` (None: from
        zero), adding their ConvLSTM terms (``lstm``) and their 1x1
        projections (``proj``)."""
        for i, (skip, conv) in enumerate(zip(skips, self.skip_projs)):
            if out is not None and skip.shape[-2:] != out.shape[-2:]:
                out = F.interpolate(
                    out, size=skip.shape[-2:], mode='bilinear',
                    align_corners=False)
            terms = []
            if lstm and i == self.skip_lstm_index:
                seq = skip
                if self.skip_lstm_diff:
                    # [x_t, x_t - x_(t-1)], no difference at the first step
                    diff = torch.cat([
                        torch.zeros_like(skip[:, :, :1]),
                        skip[:, :, 1:] - skip[:, :, :-1]
                    ], 2)
                    seq = torch.cat([skip, diff], 1)
                terms.append(self.skip_lstm_proj(self.skip_clstm(seq)))
            if proj:
                if skip.dim() == 5:
                    skip = (skip.mean(dim=2) if self.skip_reduce == 'mean'
                            else skip[:, :, skip.shape[2] // 2])
                terms.append(conv(skip))
            for term in terms:
                out = term if out is None else out + term
        return out
