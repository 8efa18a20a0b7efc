# Copyright (c) cmdyseg contributors. All rights reserved.
"""Convolutional LSTM with peephole connections (CMDyConv eq. 14).

The temporal evolution encoder of CMDyConv runs a ConvLSTM over the T'
time steps of the I3D feature map (before its temporal pooling) and keeps
the last hidden state as the temporal representation.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from cmdyseg.registry import MODELS

# Order of the four gates in the output channels of the fused convolution.
GATES = ('i', 'f', 'g', 'o')


@MODELS.register_module()
class ConvLSTMCell(BaseModule):
    """One step of a convolutional LSTM with peephole terms (eq. 14).

    .. math::

        i_t &= \\sigma(W_{xi} * X_t + W_{hi} * H_{t-1}
                      + W_{ci} \\circ C_{t-1} + b_i) \\\\
        f_t &= \\sigma(W_{xf} * X_t + W_{hf} * H_{t-1}
                      + W_{cf} \\circ C_{t-1} + b_f) \\\\
        g_t &= \\tanh(W_{xc} * X_t + W_{hc} * H_{t-1} + b_c) \\\\
        C_t &= f_t \\circ C_{t-1} + i_t \\circ g_t \\\\
        o_t &= \\sigma(W_{xo} * X_t + W_{ho} * H_{t-1}
                      + W_{co} \\circ C_t + b_o) \\\\
        H_t &= o_t \\circ \\tanh(C_t)

    ``*`` is a 2-D convolution with ``kernel_size`` and "same" padding,
    ``\\circ`` an elementwise product. The eight convolutions are computed
    as one convolution of the channel concatenation ``[X_t, H_{t-1}]``
    producing ``4 * hidden_channels`` channels, in the gate order
    ``(i, f, g, o)``: ``conv.weight[:, :in_channels]`` holds the ``W_x.``
    kernels, ``conv.weight[:, in_channels:]`` the ``W_h.`` kernels. The
    paper writes no bias; a bias per gate (``conv.bias``) is kept, as in
    the usual LSTM.

    **Peephole weights** ``W_ci, W_cf, W_co`` are *per channel* (one
    learnable scalar per hidden channel, shape ``(hidden_channels,)``,
    broadcast over positions): this keeps the cell independent of the
    feature-map size, so the same weights serve any input resolution. They
    start at zero, so a fresh cell is the plain ConvLSTM; they receive
    gradients from the second time step on (``C_{t-1} = 0`` at the first).

    Args:
        in_channels (int): Channels of the input ``X_t``.
        hidden_channels (int): Channels of ``H_t`` and ``C_t``.
        kernel_size (int): Odd kernel size of the gate convolutions.
            Defaults to 3.
        peephole (bool): Use the peephole terms of eq. 14. Defaults to True.
        forget_bias (float): Initial bias of the forget gate (a positive
            value keeps the cell state at the start of training); the other
            gate biases start at zero. Defaults to 1.0.
        init_cfg (dict or list[dict], optional): mmengine initialisation
            config; it is applied on top of the initialisation above.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int,
                 kernel_size: int = 3,
                 peephole: bool = True,
                 forget_bias: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels),
                            ('hidden_channels', hidden_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f'ConvLSTMCell: {name} must be a positive int, '
                    f'got {value!r}')
        if (not isinstance(kernel_size, int) or kernel_size < 1
                or kernel_size % 2 == 0):
            raise ValueError('ConvLSTMCell: kernel_size must be a positive '
                             f'odd int ("same" padding), got {kernel_size!r}')
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.kernel_size = kernel_size
        self.peephole = peephole
        self.conv = nn.Conv2d(
            in_channels + hidden_channels,
            4 * hidden_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=True)
        with torch.no_grad():
            self.conv.bias.zero_()
            self.conv.bias[hidden_channels:2 * hidden_channels].fill_(
                forget_bias)
        if peephole:
            self.w_ci = nn.Parameter(torch.zeros(hidden_channels))
            self.w_cf = nn.Parameter(torch.zeros(hidden_channels))
            self.w_co = nn.Parameter(torch.zeros(hidden_channels))
        else:
            self.register_parameter('w_ci', None)
            self.register_parameter('w_cf', None)
            self.register_parameter('w_co', None)

    def init_state(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Zero ``(H, C)``, each ``(B, hidden_channels, H, W)``, matching the
        batch, size, dtype and device of ``x`` (B, in_channels, H, W)."""
        b, _, h, w = x.shape
        zeros = x.new_zeros((b, self.hidden_channels, h, w))
        return zeros, zeros.clone()

    def forward(
        self,
        x: torch.Tensor,
        state: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """One time step.

        Args:
            x (Tensor): ``X_t``, (B, in_channels, H, W).
            state (tuple[Tensor], optional): ``(H_{t-1}, C_{t-1})``, each
                (B, hidden_channels, H, W); zeros when None.

        Returns:
            tuple[Tensor]: ``(H_t, C_t)``, each (B, hidden_channels, H, W).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'ConvLSTMCell: expected input (B, {self.in_channels}, H, W), '
                f'got {tuple(x.shape)}')
        return self.step(self.input_gates(x), state)

    def input_gates(self, x: torch.Tensor) -> torch.Tensor:
        """``W_x. * X + b``: the input's share of the four gates, (N,
        4 * hidden_channels, H, W) for X (N, in_channels, H, W). It does not
        depend on the state, so :class:`ConvLSTM` computes it for every
        time step in one convolution."""
        pad = self.kernel_size // 2
        return F.conv2d(x, self.conv.weight[:, :self.in_channels],
                        self.conv.bias, padding=pad)

    def step(
        self,
        x_gates: torch.Tensor,
        state: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """One time step from the input's gate share ``x_gates``
        (:meth:`input_gates`); a None state is the zero state, whose
        ``W_h. * H`` and peephole terms vanish and are skipped."""
        if state is None:
            gates = x_gates
            c_prev = None
        else:
            h_prev, c_prev = state
            gates = x_gates + F.conv2d(
                h_prev, self.conv.weight[:, self.in_channels:],
                padding=self.kernel_size // 2)
        i, f, g, o = torch.chunk(gates, 4, dim=1)
        if self.peephole and c_prev is not None:
            i = i + self.w_ci.view(1, -1, 1, 1) * c_prev
            f = f + self.w_cf.view(1, -1, 1, 1) * c_prev
        i = torch.sigmoid(i)
        g = torch.tanh(g)
        if c_prev is None:
            c = i * g
        else:
            c = torch.sigmoid(f) * c_prev + i * g
        if self.peephole:
            o = o + self.w_co.view(1, -1, 1, 1) * c
        o = torch.sigmoid(o)
        h = o * torch.tanh(c)
        return h, c


@MODELS.register_module()
class ConvLSTM(BaseModule):
    """A single-layer ConvLSTM run over the time axis of a feature clip.

    Starts from a zero state, applies :class:`ConvLSTMCell` to the T steps in
    order and returns the last hidden state ``H_T`` (the temporal
    representation ``CLSTM(pI3D(V))`` of eq. 15).

    Args:
        in_channels (int): Channels of the input clip.
        hidden_channels (int): Channels of the hidden and cell states. The
            paper uses ``hidden_channels == in_channels``.
        kernel_size (int): Odd kernel size of the gate convolutions.
            Defaults to 3.
        peephole (bool): Use the peephole terms. Defaults to True.
        forget_bias (float): Initial forget-gate bias. Defaults to 1.0.
        init_cfg (dict or list[dict], optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int,
                 kernel_size: int = 3,
                 peephole: bool = True,
                 forget_bias: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.cell = ConvLSTMCell(
            in_channels,
            hidden_channels,
            kernel_size=kernel_size,
            peephole=peephole,
            forget_bias=forget_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run over time.

        Args:
            x (Tensor): Feature clip, (B, in_channels, T, H, W), T >= 1.

        Returns:
            Tensor: Last hidden state ``H_T``, (B, hidden_channels, H, W).
        """
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[2] < 1:
            raise ValueError(
                f'ConvLSTM: expected input (B, {self.in_channels}, T, H, W) '
                f'with T >= 1, got {tuple(x.shape)}')
        b, _, t, h, w = x.shape
        # the input's gate share of all T steps in one convolution (a
        # batch of B * T maps): only W_h. * H_{t-1} is sequential
        x_gates = self.cell.input_gates(
            x.transpose(1, 2).reshape(b * t, self.in_channels, h, w))
        x_gates = x_gates.view(b, t, -1, h, w)
        state = None
        for step in range(t):
            state = self.cell.step(x_gates[:, step], state)
        return state[0]
