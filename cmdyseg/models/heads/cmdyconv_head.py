# Copyright (c) cmdyseg contributors. All rights reserved.
from typing import Optional

from cmdyseg.registry import MODELS
from .base_dyconv_head import BaseDyConvHead
from .dyconv_blocks import CMDyConvBlock


class _CMDyConvHeadBase(BaseDyConvHead):
    """Shared by :class:`CMDyConvHead` and :class:`DCMDyConvHead`."""

    def __init__(self, in_channels: int, text_channels: int, groups: int,
                 num_modules: int, coord_channels: int, deformable: bool,
                 offset_groups: int, kv_per_group: bool,
                 kt_act_cfg: Optional[dict], kv_act_cfg: Optional[dict],
                 coord_kernel: bool, backend: str,
                 norm_cfg: Optional[dict], act_cfg: Optional[dict],
                 init_cfg, **kwargs):
        super().__init__(in_channels, text_channels, groups, num_modules,
                         coord_channels, init_cfg=init_cfg, **kwargs)
        self.backend = backend
        self.block_cfg = dict(
            kv_per_group=kv_per_group,
            deformable=deformable,
            offset_groups=offset_groups,
            kt_act_cfg=kt_act_cfg,
            kv_act_cfg=kv_act_cfg,
            coord_kernel=coord_kernel,
            backend=backend,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self._build_blocks()

    def build_block(self, last: bool) -> CMDyConvBlock:
        return CMDyConvBlock(self.in_channels, self.text_channels,
                             self.groups, self.coord_channels, last,
                             **self.block_cfg)


@MODELS.register_module()
class CMDyConvHead(_CMDyConvHeadBase):
    r"""Context modulated dynamic convolution (Table 3 "+ CMDyConv"),
    eq. 9-11.

    Each block: ``k^T = tanh(FC(F_T))`` (B, C); ``k^V = sigmoid(Conv3x3(x))``
    (B, M * 9, H, W), per channel (M = C, eq. 11) or per group (M = G,
    ``kv_per_group=True``);
    ``R_p = P([\sum_i \sum_{l in 3x3} k^T_{i,j} k^V_{i,j,l}(p)
    F_{i,j}(p + l), C])`` (one channel per group j before ``P``); residual
    on intermediate blocks, the last block emits the 1-channel response map.

    ``forward(visual (B, C, H, W), text (B, D_T)) -> (B, 1, H, W)`` logits.

    Args:
        in_channels (int): C = D_M = N * G.
        text_channels (int): D_T.
        groups (int): G (default 64).
        num_modules (int): stacked blocks (default 3).
        coord_channels (int): D_C, 8 / 2 / 0.
        kv_per_group (bool): k^V per group instead of per channel
            (default False, the faithful eq. 11).
        kt_act_cfg (dict | None): activation of k^T (default Tanh).
        kv_act_cfg (dict | None): activation of k^V (default Sigmoid).
        coord_kernel (bool): scale the coordinate maps by a text kernel
            ``act_T(FC(F_T))`` before ``P`` (not in the paper: in eq. 8 the
            sentence cannot weight ``C`` directly). Default False.
        backend (str): CMDyConv operation backend: ``'auto'`` (chosen
            per device by :func:`get_cmdyconv_backend`: the compiled
            kernels on CPU when built, else the PyTorch path; Triton, else
            mmcv, on CUDA), or a name such as ``'cpp'``, ``'torch'``,
            ``'mmcv'``, ``'triton'``.
        norm_cfg (dict | None): norm of intermediate blocks (default BN).
        act_cfg (dict | None): activation after each residual (default ReLU).
        init_cfg (dict | list | None): mmengine initialisation config.
        **kwargs: the loss / prediction arguments of
            :class:`BaseDyConvHead` (``loss_decode``, ``align_corners``,
            ``ignore_index``, ``in_index``).
    """

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 groups: int = 64,
                 num_modules: int = 3,
                 coord_channels: int = 8,
                 kv_per_group: bool = False,
                 kt_act_cfg: Optional[dict] = dict(type='Tanh'),
                 kv_act_cfg: Optional[dict] = dict(type='Sigmoid'),
                 coord_kernel: bool = False,
                 backend: str = 'auto',
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg=None,
                 **kwargs):
        super().__init__(in_channels, text_channels, groups, num_modules,
                         coord_channels, False, 1, kv_per_group, kt_act_cfg,
                         kv_act_cfg, coord_kernel, backend, norm_cfg,
                         act_cfg, init_cfg, **kwargs)


@MODELS.register_module()
class DCMDyConvHead(_CMDyConvHeadBase):
    r"""Deformable context modulated dynamic convolution (Table 3
    "+ DCMDyConv"), eq. 12.

    As :class:`CMDyConvHead`; each block also predicts offsets
    ``\Delta l = Conv3x3(x)`` (B, O * 18, H, W) -- zero-initialised, so
    training starts from CMDyConv -- and samples
    ``F_{i,j}(p + l + \Delta l)`` bilinearly (zero outside the map).

    ``forward(visual (B, C, H, W), text (B, D_T)) -> (B, 1, H, W)`` logits.

    Args:
        offset_groups (int): O, 1 (default: one offset field shared by all
            channels, the usual DCN setting) or ``groups`` (one per group).
        others: as :class:`CMDyConvHead` (``**kwargs`` too).
    """

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 groups: int = 64,
                 num_modules: int = 3,
                 coord_channels: int = 8,
                 offset_groups: int = 1,
                 kv_per_group: bool = False,
                 kt_act_cfg: Optional[dict] = dict(type='Tanh'),
                 kv_act_cfg: Optional[dict] = dict(type='Sigmoid'),
                 coord_kernel: bool = False,
                 backend: str = 'auto',
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg=None,
                 **kwargs):
        super().__init__(in_channels, text_channels, groups, num_modules,
                         coord_channels, True, offset_groups, kv_per_group,
                         kt_act_cfg, kv_act_cfg, coord_kernel, backend,
                         norm_cfg, act_cfg, init_cfg, **kwargs)
