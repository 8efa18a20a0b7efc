# Copyright (c) cmdyseg contributors. All rights reserved.
"""Decon upsampling and the temporal evolution encoder (CMDyConv eq. 15).

The neck turns the video encoder's output into the medium-resolution video
feature ``F_V^M`` (x4 the encoder's resolution) on which the dynamic
convolution heads operate.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
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

    Cost of the faithful ConvLSTM (hidden = input channels): its gate
    convolution has ``(2C) * (4C) * k^2`` weights, about 50M for C = 832
    (Inception I3D) and 75M for C = 1024 (I3D-R50 layer3) with k = 3.
    ``lstm_input_proj=k`` is the cheaper, documented alternative: a 1x1x1
    convolution (linear, no activation) first projects every time step to
    ``k`` channels and the ConvLSTM then runs with hidden size ``k``.

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
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
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
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            what = type(inputs).__name__
            if isinstance(inputs, (tuple, list)):
                what += f' of length {len(inputs)}'
            raise TypeError('TemporalDeconNeck: inputs must be the pair '
                            '(feat, static) of the video encoder, got '
                            f'{what}')
        feat, static = inputs
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
        return feat, static

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Compute ``F_V^M``.

        Args:
            inputs (tuple[Tensor]): ``(feat, static)`` from the video
                encoder: ``feat`` = pI3D(V), (B, C, T', h, w) (not used
                without the temporal branch) and ``static`` = F_V^S,
                (B, C, h, w).

        Returns:
            Tensor: F_V^M, (B, out_channels, 4h, 4w); with the temporal
            branch the first ``out_channels // 2`` channels come from
            ``static``, the rest from the ConvLSTM.
        """
        feat, static = self._check_inputs(inputs)
        out = self.static_decon(static)
        if not self.use_temporal:
            return out
        if self.lstm_input_proj is not None:
            feat = self.lstm_input_proj(feat)
        temporal = self.temporal_decon(self.clstm(feat))
        return torch.cat([out, temporal], dim=1)
