# Copyright (c) cmdyseg contributors. All rights reserved.
"""Export a :class:`~cmdyseg.models.segmentors.CMDySegmentor` to ONNX.

The exported graph is :class:`OnnxExportWrapper`:

inputs
    ``clip`` (B, 3, T, H, W) uint8 RGB frames at the network input size,
    laid out as ``PackReferSegInputs`` packs them; the data
    preprocessor's normalisation ``(clip - mean) / std`` is *inside* the
    graph. ``word_vectors`` (S, L, D_w) float32, the word vectors of S
    sentences padded to L words (row ``t`` of sentence ``s`` is the vector
    of its ``t``-th word, zero for an out-of-vocabulary word and for the
    padding). ``lengths`` (S,) int64, the number of words of each sentence
    (clamped to ``[1, L]``, as the text encoder counts an empty sentence as
    one zero word).
outputs
    ``response`` (B, S, h, w) float32, the head's response map (logits) of
    every (clip, sentence) pair at the head's output resolution, and
    ``mask`` (B, S, h, w) uint8 0/1, the model's ``test_cfg`` rule
    (half of the map's maximum by default) applied to ``sigmoid(response)``
    at that resolution.

B and S are dynamic; T, H, W and L are fixed at export time. What stays
outside the graph: the tokenizer and the word-vector lookup (strings and
a 400k-word table have no place in it), and the resize of the response
map to the original frame size (that size differs per video): the runtime
(:mod:`.onnx_runtime`) does both with the same code the PyTorch model uses.

The graph reuses the model's own modules: the data preprocessor, the video
encoder (:meth:`CMDySegmentor.encode_video`) and the head. Two pieces are
re-expressed for export, each checked against the original in
``tests/deployment/test_export_onnx.py``:

* the text encoder's bi-GRU runs on padded word vectors with explicit
  lengths (:class:`WordVectorGRU`) instead of packed sequences (which have
  no ONNX form): the forward direction reads the padded sequence, the
  backward one each sentence reversed within its length, and the max-pool
  skips the padding -- the same F_T as
  :class:`~cmdyseg.models.text_encoders.GRUSentenceEncoder`, with the
  same GRU parameters (an ONNX ``GRU`` node each);
* the CMDyConv operation runs on the ``'onnx'`` backend registered here
  (:func:`onnx_cmdyconv`, pure PyTorch: the nine shifted windows without
  offsets, one bilinear ``grid_sample`` -- ONNX ``GridSample`` -- for the
  nine window positions with them), which computes what the ``'cpp'`` /
  ``'torch'`` backends compute with standard ops. mmcv's compiled op and
  cmdyseg's C++ / Triton kernels cannot be exported. ONNX's own
  ``DeformConv`` (opset 19; onnxruntime 1.31 runs it on CPU) is not used:
  torch.onnx emits it only for torchvision's op, through a custom
  translation, and it has one deform-group count for mask and offsets,
  while ``GridSample`` is exact, standard and as compact.

:func:`check_exportable` refuses, with an :class:`ExportError` (one line
from the tools), a model the graph cannot represent.
"""
import contextlib
import hashlib
import io
import json
import os
import warnings
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from cmdyseg.models.heads.base_dyconv_head import (BaseDyConvHead,
                                                   response_to_mask)
from cmdyseg.models.layers import KERNEL_POINTS, register_cmdyconv_backend
from cmdyseg.utils.errors import UserInputError

__all__ = [
    'ExportError', 'OnnxExportWrapper', 'WordVectorGRU', 'check_exportable',
    'export_backend', 'export_onnx', 'onnx_cmdyconv', 'EXPORT_BACKEND',
    'INPUT_NAMES', 'OUTPUT_NAMES', 'EXPORTERS', 'check_with_onnxruntime',
    'export_segmentor', 'exported_meta', 'output_size', 'pipeline_geometry'
]

#: The CMDyConv backend the exported graph uses (registered below; never
#: picked by ``'auto'``).
EXPORT_BACKEND = 'onnx'
INPUT_NAMES = ('clip', 'word_vectors', 'lengths')
OUTPUT_NAMES = ('response', 'mask')
#: ``torch.onnx.export``'s two exporters: ``'dynamo'`` (torch.export, the
#: default of torch >= 2.9; needs onnxscript) and ``'torchscript'`` (the
#: legacy tracer, deprecated since torch 2.9).
EXPORTERS = ('dynamo', 'torchscript')
#: The oldest opset with ``GridSample`` (16); the dynamo exporter itself
#: writes opset 18 or newer.
MIN_OPSET = {'dynamo': 18, 'torchscript': 16}


class ExportError(UserInputError, ValueError):
    """The model (or an export option) cannot be exported to ONNX: the
    message names the part and why."""


# --------------------------------------------------------------------------
# the CMDyConv operation in ONNX-friendly ops
# --------------------------------------------------------------------------
@register_cmdyconv_backend(EXPORT_BACKEND, device_types=())
def onnx_cmdyconv(x: Tensor, mask: Tensor, offset: Optional[Tensor],
                  groups: int) -> Tensor:
    """The CMDyConv backend of the exported graph (a plain backend, see
    :func:`cmdyseg.models.layers.cmdyconv`): ``x`` (B, C, H, W) already
    scaled by ``kt``, ``mask`` (B, M * 9, H, W), ``offset`` None or
    (B, O * 18, H, W) -> (B, groups, H, W).

    Without offsets each window position is a slice of the zero-padded
    ``x``. With offsets it is ``F.grid_sample`` (bilinear, zero padding,
    ``align_corners=False`` with the pixel -> grid mapping
    ``g = (2 p + 1) / size - 1``): sampling at ``(h - 1 + ky + dy,
    w - 1 + kx + dx)``, each of the four neighbours outside the image
    contributing zero -- mmcv's ``modulated_deform_conv2d`` rule, so a
    sample outside ``(-1, H) x (-1, W)`` is zero as well. The nine window
    positions are gathered in one call (a (B, C, 9, H, W) column buffer,
    as ``DeformConv`` builds): few nodes, a fast export.
    """
    b, c, h, w = x.shape
    mg = mask.shape[1] // KERNEL_POINTS
    # window position l = 3 * ky + kx on axis 3
    m = mask.to(x.dtype).view(b, mg, 1, KERNEL_POINTS, h, w)
    if offset is None:
        xp = F.pad(x, (1, 1, 1, 1))
        cols = torch.stack([
            xp[..., ky:ky + h, kx:kx + w] for ky in range(3)
            for kx in range(3)
        ], 2)  # (B, C, 9, H, W)
    else:
        og = offset.shape[1] // (2 * KERNEL_POINTS)
        off = offset.to(x.dtype).view(b, og, KERNEL_POINTS, 2, h, w)
        lpos = torch.arange(KERNEL_POINTS, device=x.device)
        ky = (lpos // 3 - 1).to(x.dtype).view(1, 1, KERNEL_POINTS, 1, 1)
        kx = (lpos % 3 - 1).to(x.dtype).view(1, 1, KERNEL_POINTS, 1, 1)
        ys = torch.arange(h, dtype=x.dtype, device=x.device).view(
            1, 1, 1, h, 1)
        xs = torch.arange(w, dtype=x.dtype, device=x.device).view(
            1, 1, 1, 1, w)
        # integer part first: zero offsets land exactly on pixels
        py = (ys + ky) + off[:, :, :, 0]  # (B, O, 9, H, W)
        px = (xs + kx) + off[:, :, :, 1]
        grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1],
                           -1).view(b * og, KERNEL_POINTS * h, w, 2)
        # all 9 window positions in one call: (B * O, C / O, 9 * H, W)
        cols = F.grid_sample(
            x.reshape(b * og, c // og, h, w),
            grid,
            mode='bilinear',
            padding_mode='zeros',
            align_corners=False).view(b, c, KERNEL_POINTS, h, w)
    cols = cols.view(b, mg, c // mg, KERNEL_POINTS, h, w)
    out = (cols * m).sum(3)  # (B, M, C / M, H, W) = (B, C, H, W)
    return out.view(b, groups, c // groups, h, w).sum(2)


def _cmdyconv_blocks(model: nn.Module) -> List[nn.Module]:
    from cmdyseg.models.heads.dyconv_blocks import CMDyConvBlock
    return [m for m in model.modules() if isinstance(m, CMDyConvBlock)]


@contextlib.contextmanager
def export_backend(model: nn.Module,
                   backend: str = EXPORT_BACKEND) -> Iterator[nn.Module]:
    """Run the model's CMDyConv blocks on ``backend`` inside the block
    (their configured backends are restored afterwards)."""
    blocks = _cmdyconv_blocks(model)
    saved = [blk.backend for blk in blocks]
    try:
        for blk in blocks:
            blk.backend = backend
        yield model
    finally:
        for blk, name in zip(blocks, saved):
            blk.backend = name


# --------------------------------------------------------------------------
# the text encoder on word vectors
# --------------------------------------------------------------------------
class WordVectorGRU(nn.Module):
    """F_T of :class:`GRUSentenceEncoder` from padded word vectors and
    lengths, in ops that export (no packed sequences).

    Holds the encoder's GRU itself (its parameters, not copies).

    ``forward(word_vectors (S, L, D_w), lengths (S,) int64) -> (S, D_T)``.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.gru = encoder.gru

    def _run(self, x: Tensor, suffix: str) -> Tensor:
        gru = self.gru
        params = [
            getattr(gru, f'{name}_l0{suffix}')
            for name in ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')
        ]
        hx = x.new_zeros(1, x.shape[0], gru.hidden_size)
        # (input, hx, params, has_biases, num_layers, dropout, train,
        #  bidirectional, batch_first): one direction, as nn.GRU calls it
        out, _ = torch.gru(x, hx, params, True, 1, 0.0, False, False, True)
        return out  # (S, L, hidden)

    def forward(self, word_vectors: Tensor, lengths: Tensor) -> Tensor:
        s, num_words, dims = word_vectors.shape
        lengths = lengths.to(torch.int64).clamp(1, num_words).view(s, 1)
        steps = torch.arange(num_words, device=word_vectors.device).view(
            1, num_words)
        valid = steps < lengths  # (S, L)
        outs = [self._run(word_vectors, '')]
        if self.gru.bidirectional:
            # each sentence reversed within its length (padding stays put):
            # the backward GRU starts at the last real word
            rev = torch.where(valid, lengths - 1 - steps, steps)
            reversed_words = torch.gather(
                word_vectors, 1,
                rev.unsqueeze(-1).expand(s, num_words, dims))
            # its outputs come in reverse order: the max below ignores it
            outs.append(self._run(reversed_words, '_reverse'))
        hidden = torch.cat(outs, -1)
        hidden = hidden.masked_fill(~valid.unsqueeze(-1), float('-inf'))
        return hidden.amax(1)


# --------------------------------------------------------------------------
# the exported module
# --------------------------------------------------------------------------
class OnnxExportWrapper(nn.Module):
    """The module that is exported (see the module doc for its inputs and
    outputs). It shares every module with ``model``: build it, export it,
    drop it.

    Args:
        model (CMDySegmentor): In eval mode, checked by
            :func:`check_exportable`.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        check_exportable(model)
        self.model = model
        self.text = WordVectorGRU(model.text_encoder)
        self.test_cfg = dict(model.test_cfg)

    def forward(self, clip: Tensor, word_vectors: Tensor,
                lengths: Tensor) -> Tuple[Tensor, Tensor]:
        model = self.model
        inputs = model.data_preprocessor(
            dict(inputs=clip, data_samples=None))['inputs']
        visual = model.encode_video(inputs)  # (B, C, h, w)
        if isinstance(visual, (list, tuple)):
            visual = visual[model.head.in_index]
        text = self.text(word_vectors, lengths)  # (S, D_T)
        b, c, h, w = visual.shape
        s = text.shape[0]
        # every (clip, sentence) pair, clip-major
        pairs_v = visual.unsqueeze(1).expand(b, s, c, h, w).reshape(
            b * s, c, h, w)
        pairs_t = text.unsqueeze(0).expand(b, s, text.shape[1]).reshape(
            b * s, text.shape[1])
        logits = model.head(pairs_v, pairs_t)  # (B * S, 1, h, w)
        mask = response_to_mask(logits.float().sigmoid(), **self.test_cfg)
        return (logits.view(b, s, h, w),
                mask.to(torch.uint8).view(b, s, h, w))


# --------------------------------------------------------------------------
# what can be exported
# --------------------------------------------------------------------------
def _mmcv_op_modules(model: nn.Module) -> List[Tuple[str, str]]:
    """``(module path, class)`` of the modules from ``mmcv.ops`` (compiled
    ops with no ONNX form)."""
    found = []
    for name, module in model.named_modules():
        mod = type(module).__module__ or ''
        if mod == 'mmcv.ops' or mod.startswith('mmcv.ops.'):
            found.append((name, f'{mod}.{type(module).__name__}'))
    return found


def check_exportable(model: nn.Module) -> None:
    """Raise :class:`ExportError` when ``model`` cannot become the graph
    of :class:`OnnxExportWrapper`; the message names the part.

    Refused: a model that is not a segmentor with ``encode_video`` and a
    ``head`` (:class:`BaseDyConvHead`, whose ``predict_by_feat`` the runtime
    reuses); a text encoder other than ``GRUSentenceEncoder`` (the graph
    takes word vectors; a one-layer GRU); a data preprocessor without the
    ``mean`` / ``std`` normalisation of ``ReferSegDataPreprocessor``; any
    module of ``mmcv.ops`` (compiled ops without a PyTorch fallback).
    CMDyConv blocks are fine whatever their backend: the export runs them
    on the ``'onnx'`` backend.
    """
    from cmdyseg.models.segmentors.data_preprocessor import \
        ReferSegDataPreprocessor
    from cmdyseg.models.text_encoders import GRUSentenceEncoder
    kind = type(model).__name__
    for attr in ('encode_video', 'head', 'text_encoder', 'test_cfg'):
        if not hasattr(model, attr):
            raise ExportError(
                f'cannot export a {kind}: the ONNX export takes a '
                f'CMDySegmentor (encode_video, text_encoder, head, '
                f'test_cfg); it has no {attr!r}')
    head = model.head
    if not isinstance(head, BaseDyConvHead):
        raise ExportError(
            f'cannot export head {type(head).__name__}: the ONNX runtime '
            'decodes the response map with BaseDyConvHead.predict_by_feat, '
            'so the head must be a BaseDyConvHead')
    for method in ('predict_by_feat', 'resize'):
        if getattr(type(head), method) is not getattr(BaseDyConvHead,
                                                      method):
            raise ExportError(
                f'cannot export head {type(head).__name__}: it overrides '
                f'{method}(), which the ONNX runtime replaces with '
                "BaseDyConvHead's")
    enc = model.text_encoder
    if not isinstance(enc, GRUSentenceEncoder):
        raise ExportError(
            f'cannot export text encoder {type(enc).__name__}: the ONNX '
            'graph takes word vectors (the tokenizer and the lookup stay '
            'outside it), which only GRUSentenceEncoder (word vectors + '
            'bi-GRU) encodes')
    gru = getattr(enc, 'gru', None)
    if not isinstance(gru, nn.GRU) or gru.num_layers != 1 or \
            not gru.batch_first:
        raise ExportError(
            'cannot export text encoder GRUSentenceEncoder: its GRU must be '
            f'one batch-first nn.GRU layer, got {gru!r}')
    pre = model.data_preprocessor
    if not isinstance(pre, ReferSegDataPreprocessor):
        raise ExportError(
            f'cannot export data preprocessor {type(pre).__name__}: the '
            'graph normalises the clip as ReferSegDataPreprocessor does '
            '((clip - mean) / std); other preprocessors are not supported')
    ops = _mmcv_op_modules(model)
    if ops:
        where = ', '.join(f'{n or "<model>"} ({c})' for n, c in ops[:3])
        more = f' and {len(ops) - 3} more' if len(ops) > 3 else ''
        raise ExportError(
            f'cannot export {kind}: it uses mmcv compiled ops without a '
            f'PyTorch fallback, which have no ONNX form: {where}{more}')


# --------------------------------------------------------------------------
# the export
# --------------------------------------------------------------------------
def _example_inputs(model, clip_len: int, img_shape: Sequence[int],
                    num_words: int) -> Tuple[Tensor, Tensor, Tensor]:
    # B = S = 2: a size of 1 would be specialised to a constant
    gen = torch.Generator().manual_seed(0)
    h, w = img_shape
    clip = torch.randint(
        0, 256, (2, 3, clip_len, h, w), dtype=torch.uint8, generator=gen)
    dims = model.text_encoder.embed_dims
    words = torch.randn(2, num_words, dims, generator=gen)
    lengths = torch.tensor([max(1, num_words // 2), num_words])
    return clip, words, lengths


def _first_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(exc).__name__


def export_onnx(model: nn.Module,
                clip_len: int,
                img_shape: Sequence[int],
                num_words: int,
                opset: int = 19,
                exporter: str = 'dynamo') -> bytes:
    """The serialised ONNX model (``bytes``) of :class:`OnnxExportWrapper`
    around ``model``.

    Args:
        model (CMDySegmentor): In eval mode (e.g. from
            :func:`cmdyseg.apis.init_model`).
        clip_len (int): T, frames per clip.
        img_shape (Sequence[int]): (H, W), the network input size.
        num_words (int): L, words per sentence (the padding length).
        opset (int): ONNX opset. Defaults to 19.
        exporter (str): ``'dynamo'`` (default) or ``'torchscript'``.

    Raises:
        ExportError: an unsupported model part (:func:`check_exportable`),
            a bad option, or the exporter failed (its first line; the
            traceback with ``--debug`` / ``CMDYSEG_DEBUG=1``).
    """
    if exporter not in EXPORTERS:
        raise ExportError(f'unknown exporter {exporter!r}, expected one of '
                          f'{EXPORTERS}')
    if opset < MIN_OPSET[exporter]:
        raise ExportError(
            f'opset {opset} is too old for the {exporter} exporter: at '
            f'least {MIN_OPSET[exporter]} (GridSample needs 16)')
    for name, val in (('clip_len', clip_len), ('num_words', num_words)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise ExportError(f'{name} must be a positive int, got {val!r}')
    if len(img_shape) != 2 or any(int(s) < 1 for s in img_shape):
        raise ExportError(f'img_shape must be (H, W) > 0, got {img_shape}')
    img_shape = tuple(int(s) for s in img_shape)
    wrapper = OnnxExportWrapper(model).eval()
    args = _example_inputs(model, clip_len, img_shape, num_words)
    common = dict(
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
        opset_version=opset)
    try:
        with export_backend(model), torch.no_grad():
            if exporter == 'dynamo':
                batch = torch.export.Dim('batch', min=1, max=4096)
                sentences = torch.export.Dim('sentences', min=1, max=4096)
                with warnings.catch_warnings():
                    # torch.export's own deprecation / constraint notes
                    warnings.simplefilter('ignore')
                    program = torch.onnx.export(
                        wrapper,
                        args,
                        dynamo=True,
                        external_data=False,
                        dynamic_shapes=({0: batch}, {0: sentences},
                                        {0: sentences}),
                        verbose=False,
                        **common)
                return program.model_proto.SerializeToString()
            buf = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                torch.onnx.export(
                    wrapper,
                    args,
                    buf,
                    dynamo=False,
                    dynamic_axes=dict(
                        clip={0: 'batch'},
                        word_vectors={0: 'sentences'},
                        lengths={0: 'sentences'},
                        response={0: 'batch', 1: 'sentences'},
                        mask={0: 'batch', 1: 'sentences'}),
                    **common)
            return _with_output_size(buf.getvalue(), wrapper, args)
    except UserInputError:
        raise
    except Exception as e:
        raise ExportError(
            f'the {exporter} ONNX exporter failed on {type(model).__name__}:'
            f' {type(e).__name__}: {_first_line(e)} (--debug shows the '
            'traceback)') from e


def _static_output_size(proto) -> Optional[Tuple[int, int]]:
    for out in proto.graph.output:
        if out.name == OUTPUT_NAMES[0]:
            dims = out.type.tensor_type.shape.dim
            if len(dims) == 4 and all(
                    d.HasField('dim_value') for d in dims[2:]):
                return int(dims[2].dim_value), int(dims[3].dim_value)
    return None


def output_size(model_bytes: bytes) -> Tuple[int, int]:
    """(h, w) of the ``response`` output of a serialised graph (static:
    only B and S are dynamic)."""
    import onnx
    size = _static_output_size(onnx.load_from_string(model_bytes))
    if size is None:
        raise ExportError('the exported graph has no static (h, w) for its '
                          f'{OUTPUT_NAMES[0]!r} output')
    return size


def _with_output_size(model_bytes: bytes, wrapper: nn.Module,
                      args: Tuple[Tensor, ...]) -> bytes:
    """Write the static (h, w) of both outputs into the graph when the
    exporter left them symbolic (the TorchScript one does): from a PyTorch
    forward pass of one clip and one sentence."""
    import onnx
    proto = onnx.load_from_string(model_bytes)
    if _static_output_size(proto) is not None:
        return model_bytes
    clip, words, lengths = args
    with torch.no_grad():
        response, _ = wrapper(clip[:1], words[:1], lengths[:1])
    h, w = (int(s) for s in response.shape[-2:])
    for out in proto.graph.output:
        dims = out.type.tensor_type.shape.dim
        if out.name in OUTPUT_NAMES and len(dims) == 4:
            for dim, size in zip(dims[2:], (h, w)):
                dim.Clear()
                dim.dim_value = size
    return proto.SerializeToString()


def exported_meta(model: nn.Module) -> Dict:
    """What a runtime needs from the model besides the graph: the
    normalisation (already in the graph), the text encoder's word vectors
    and ``max_words``, ``test_cfg`` and the head's ``align_corners``."""
    pre = model.data_preprocessor
    enc = model.text_encoder
    wv = dict(enc.word_vectors)
    return dict(
        normalisation=dict(
            in_graph=True,
            mean=[float(f'{v:.7g}') for v in pre.mean.flatten().tolist()],
            std=[float(f'{v:.7g}') for v in pre.std.flatten().tolist()],
            formula='(clip - mean) / std per RGB channel, clip in 0..255'),
        word_vectors=dict(
            path=wv.get('path'),
            format=wv.get('format'),
            dims=int(enc.embed_dims),
            max_words=int(enc.max_words),
            oov='zero vector',
            tokenizer='cmdyseg.models.text_encoders.tokenizer.tokenize'),
        test_cfg=dict(model.test_cfg),
        align_corners=bool(model.head.align_corners),
        head=type(model.head).__name__,
        text_channels=int(enc.out_channels))


# --------------------------------------------------------------------------
# defaults from the config, the check, the files
# --------------------------------------------------------------------------
def pipeline_geometry(cfg) -> Dict:
    """What the config's test pipeline gives the network: ``clip_len``,
    ``frame_interval``, ``img_shape`` ((H, W), or None when the size
    depends on the video, e.g. ``keep_ratio=True``) and ``test_pipeline``
    (the steps, or None without a pipeline: then nothing is known)."""
    from mmengine.registry import DefaultScope

    from cmdyseg.apis.inference import VideoPreprocessor, _test_pipeline
    try:
        steps = _test_pipeline(cfg)
    except ValueError:
        return dict(clip_len=None, frame_interval=None, img_shape=None,
                    test_pipeline=None)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'cmdyseg')):
        try:
            pre = VideoPreprocessor(cfg)
        except ValueError as e:
            raise ExportError(f'the test pipeline cannot prepare clips for '
                              f'the exported model: {e}') from e
        shapes = set()
        for h, w in ((240, 320), (200, 500)):  # two aspect ratios
            frame = np.zeros((h, w, 3), np.uint8)
            shapes.add(tuple(pre([frame, frame])['img_shape']))
    return dict(
        clip_len=int(pre.clip_len),
        frame_interval=int(pre.frame_interval),
        img_shape=shapes.pop() if len(shapes) == 1 else None,
        test_pipeline=steps)


def _resolve_geometry(cfg, clip_len, img_shape):
    geo = pipeline_geometry(cfg)
    if clip_len is None:
        clip_len = geo['clip_len']
        if clip_len is None:
            raise ExportError('the config has no test pipeline to take the '
                              'clip length from: give --clip-len N')
    elif geo['clip_len'] is not None and clip_len != geo['clip_len']:
        raise ExportError(
            f'--clip-len {clip_len} differs from the test pipeline\'s '
            f'clip_len={geo["clip_len"]}, which a runtime uses to cut the '
            'windows: change the pipeline with --cfg-options instead')
    if img_shape is None:
        img_shape = geo['img_shape']
        if img_shape is None:
            raise ExportError(
                'the input size depends on the video (the test pipeline '
                'keeps the aspect ratio, or there is none): give --shape H W')
    else:
        img_shape = tuple(int(s) for s in img_shape)
        if geo['img_shape'] is not None and img_shape != geo['img_shape']:
            raise ExportError(
                f'--shape {img_shape[0]} {img_shape[1]} differs from the '
                f'size the test pipeline resizes frames to, '
                f'{geo["img_shape"][0]} {geo["img_shape"][1]}: change the '
                'pipeline with --cfg-options instead')
    return int(clip_len), tuple(img_shape), geo


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return obj


def check_with_onnxruntime(model_bytes: bytes, model: nn.Module,
                           clip_len: int, img_shape: Sequence[int],
                           num_words: int, batch: int = 1,
                           seed: int = 0) -> Dict:
    """Run the serialised graph in onnxruntime (CPU) and the same
    :class:`OnnxExportWrapper` in PyTorch -- on the model's own CMDyConv
    backend -- on random inputs (``batch`` clips, default 1, which also
    checks that the dynamic axes were not fixed to the export's example
    size 2; two sentences of different lengths); return ``max_abs_diff``
    of the response maps, ``mask_agreement`` (fraction of equal mask
    pixels) and the inputs' shapes."""
    from .onnx_runtime import session_from_bytes
    session = session_from_bytes(model_bytes)
    gen = torch.Generator().manual_seed(seed)
    h, w = img_shape
    clip = torch.randint(
        0, 256, (batch, 3, clip_len, h, w), dtype=torch.uint8, generator=gen)
    words = torch.randn(
        2, num_words, model.text_encoder.embed_dims, generator=gen)
    lengths = torch.tensor([min(3, num_words), num_words])
    words[0, lengths[0]:] = 0  # padding is zero, as the lookup writes it
    with torch.no_grad():
        ref_resp, ref_mask = OnnxExportWrapper(model).eval()(
            clip, words, lengths)
    resp, mask = session.run(
        None,
        dict(clip=clip.numpy(), word_vectors=words.numpy(),
             lengths=lengths.numpy()))
    return dict(
        max_abs_diff=float(np.abs(resp - ref_resp.numpy()).max()),
        mask_agreement=float((mask == ref_mask.numpy()).mean()),
        response_shape=list(resp.shape),
        lengths=[int(n) for n in lengths])


def export_segmentor(model: nn.Module,
                     out_path: str,
                     clip_len: Optional[int] = None,
                     img_shape: Optional[Sequence[int]] = None,
                     num_words: Optional[int] = None,
                     opset: int = 19,
                     exporter: str = 'dynamo',
                     check: bool = False,
                     check_atol: float = 1e-3,
                     source: Optional[Dict] = None) -> Dict:
    """Export ``model`` to ``out_path`` and write its sidecar
    (``out_path + '.json'``), each atomically.

    ``clip_len`` / ``img_shape`` default to what ``model.cfg``'s test
    pipeline gives (and must agree with it), ``num_words`` to the text
    encoder's ``max_words``. With ``check``, the graph is first run in
    onnxruntime against PyTorch (:func:`check_with_onnxruntime`) and
    nothing is written when the response maps differ by more than
    ``check_atol`` (an :class:`ExportError`).

    Returns:
        dict: The sidecar (with ``check`` results under ``"check"``).
    """
    from cmdyseg.fileio import atomic_write
    from cmdyseg.version import __version__
    from .onnx_runtime import SIDECAR_FORMAT, SIDECAR_VERSION, sidecar_path
    check_exportable(model)
    cfg = getattr(model, 'cfg', None)
    if cfg is None:
        raise ExportError('the model has no .cfg: build it with '
                          'cmdyseg.apis.init_model')
    clip_len, img_shape, geo = _resolve_geometry(cfg, clip_len, img_shape)
    max_words = model.text_encoder.max_words
    if num_words is None:
        num_words = max_words
    if isinstance(num_words, bool) or not isinstance(num_words, int) or \
            not 1 <= num_words <= max_words:
        raise ExportError(
            f'--num-words must be in 1..{max_words} (the text encoder '
            f'keeps at most max_words={max_words} words), got {num_words!r}')
    model_bytes = export_onnx(model, clip_len, img_shape, num_words, opset,
                              exporter)
    out_h, out_w = output_size(model_bytes)
    checked = None
    if check:
        checked = check_with_onnxruntime(model_bytes, model, clip_len,
                                         img_shape, num_words)
        checked['atol'] = check_atol
        if not checked['max_abs_diff'] <= check_atol:
            raise ExportError(
                'onnxruntime disagrees with PyTorch: max |response '
                f'difference| {checked["max_abs_diff"]:.3g} > {check_atol} '
                '(nothing written)')
    dims = model.text_encoder.embed_dims
    meta = dict(
        format=SIDECAR_FORMAT,
        version=SIDECAR_VERSION,
        onnx_file=os.path.basename(out_path),
        onnx_sha256=hashlib.sha256(model_bytes).hexdigest(),
        inputs=[
            dict(name='clip', dtype='uint8',
                 shape=['batch', 3, clip_len, img_shape[0], img_shape[1]],
                 layout='B, RGB, T, H, W (frames at the input size, '
                 '0..255; normalised inside the graph)'),
            dict(name='word_vectors', dtype='float32',
                 shape=['sentences', num_words, dims],
                 layout='S, L, D: word vector of word t of sentence s, '
                 'zero for out-of-vocabulary words and padding'),
            dict(name='lengths', dtype='int64', shape=['sentences'],
                 layout='words per sentence, 1..L (an empty sentence is '
                 'one zero word)'),
        ],
        outputs=[
            dict(name='response', dtype='float32',
                 shape=['batch', 'sentences', out_h, out_w],
                 layout='logits of the head at its output resolution'),
            dict(name='mask', dtype='uint8',
                 shape=['batch', 'sentences', out_h, out_w],
                 layout='test_cfg rule on sigmoid(response) at that '
                 'resolution; for masks at the frame size resize the '
                 'response first (OnnxSegmentor does)'),
        ],
        clip_len=clip_len,
        frame_interval=geo['frame_interval'],
        img_shape=list(img_shape),
        output_shape=[out_h, out_w],
        num_words=num_words,
        test_pipeline=geo['test_pipeline'],
        opset=opset,
        exporter=exporter,
        versions=dict(cmdyseg=__version__, torch=torch.__version__),
        source=dict(source or {}),
        **exported_meta(model))
    if checked is not None:
        meta['check'] = checked
    meta = _jsonable(meta)
    text = json.dumps(meta, indent=2)  # fails before anything is written
    with atomic_write(out_path, 'wb') as f:
        f.write(model_bytes)
    with atomic_write(sidecar_path(out_path), 'w', encoding='utf-8') as f:
        f.write(text + '\n')
    return meta
