# Copyright (c) cmdyseg contributors. All rights reserved.
"""Parameters, FLOPs, time and memory of a cmdyseg model, per module.

    python tools/analysis/get_model_complexity.py CONFIG
        [--shape T H W] [--batch-size B] [--sentence "..."] [--repeat N]
        [--warmup N] [--depth 1|2] [--time-depth 1|2] [--device cpu|cuda]
        [--random-word-vectors] [--cfg-options k=v ...] [--json OUT]

Examples::

    # the paper model at 16 x 512 x 512, PAPER_CFG being
    # configs/cmdyconv/dcmdyconv-temporal_i3d-r50_4xb9-10e_a2d-sentences-\
    # 512x512.py; add --cfg-options model.neck.lstm_input_proj=256 for the
    # cheaper ConvLSTM
    python tools/analysis/get_model_complexity.py $PAPER_CFG \
        --shape 16 512 512 --batch-size 1 --repeat 1 --depth 2

The model is built from CONFIG (``init_weights()`` is *not* called, so no
pretrained checkpoint is read; the weights keep their constructor
initialisation, which changes no cost) and run on a random clip
(B, 3, T, H, W) -- taken as already normalised, the data preprocessor is
not run -- with the same sentence for every clip. The model is in training
mode (the encoder's frozen stages stay in eval mode, as in training).

Reported per module (``--depth 1``: the segmentor's top-level modules
``backbone``, ``neck``, ``text_encoder``, ``head``; ``--depth 2`` adds their
children, looking through single-child wrappers such as
``backbone.backbone`` or ``head.blocks``), and for the whole model:

* **params / trainable**: sum of ``numel`` of the module's parameters (all /
  those with ``requires_grad``). The frozen word-vector table of the text
  encoder is a buffer, not a parameter, and is not counted.
* **FLOPs** of one forward pass, as
  ``torch.utils.flop_counter.FlopCounterMode`` records them per module
  during the recording forward described below: 2
  FLOPs per multiply-add of convolutions and matrix products; elementwise
  operations (activations, norms, the ConvLSTM gating) are not counted.
  The CMDyConv operation (``cmdyseg.models.layers.cmdyconv``) runs as mmcv's
  compiled deformable convolution or as unfold/gather code that the
  counter does not see, so its **analytic** count is added in a separate
  column (see :func:`cmdyconv_flops`).
* **forward / backward time** in ms, the median of ``--repeat`` runs after
  ``--warmup`` untimed runs (default 1). Each module is re-run on its own
  inputs, recorded with forward pre-hooks during one training forward of
  the whole model (the recording forward); an
  input tensor requires grad when it did in that forward (so the video
  never does and the input of a frozen stage does not, as in training).
  The backward pass is that of ``sum(out * P)`` with a fixed random ``P``
  per output; "-" when no output requires grad. Parameter gradients are
  cleared before every run.
* **peak memory** (MiB) of one forward + backward of the module above what
  was allocated before it (the inputs, parameters and model excluded):
  CUDA: ``torch.cuda.max_memory_allocated`` on the last timed run; CPU, on
  the first warm-up run (or an extra run): the running total of the
  allocations and frees recorded by ``torch.profiler`` with
  ``profile_memory=True``, or -- if that fails -- the growth of the
  process's peak RSS (``VmHWM``, reset through ``/proc/self/clear_refs``),
  which misses memory the allocator reuses. The method used is printed.

If the text encoder's word-vector file is missing (e.g. the A2D word2vec
extract of the paper configs), or with ``--random-word-vectors``, a
temporary word2vec file holding random vectors of the configured ``dims``
for the words of the sentence is used instead -- the GRU's cost depends on
the vector size only -- and the output says so.
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from torch.utils.flop_counter import FlopCounterMode

# importing cmdyseg applies its compatibility fixes before mmaction loads
import cmdyseg
from cmdyseg.fileio import atomic_write
from cmdyseg.fileio.word_vectors import (WordVectorsNotFoundError,
                                         read_vector_dims,
                                         save_word2vec_binary)
from cmdyseg.models.heads import CMDyConvBlock
from cmdyseg.models.layers import KERNEL_POINTS, get_cmdyconv_backend
from cmdyseg.models.text_encoders.tokenizer import tokenize
from cmdyseg.registry import MODELS
from cmdyseg.structures import ReferSegDataSample
from cmdyseg.utils.cli import DEBUG_HELP, run_cli
from cmdyseg.utils.config_check import apply_cfg_options
from cmdyseg.utils.errors import (ConfigError, InputNotFoundError,
                                  UserInputError)
from cmdyseg.utils.runtime import CfgOptionsAction
from cmdyseg.utils.setup_env import register_all_modules

DEFAULT_SENTENCE = 'the man in a red shirt is riding a bicycle on the road'
DEFAULT_WORD_DIMS = 300
MIB = 1024.0**2


class DeviceError(UserInputError, RuntimeError):
    """The requested device does not exist on this machine."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        epilog=DEBUG_HELP,
        description='Parameters, FLOPs, time and memory of a cmdyseg model '
        'per module')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        '--shape', type=int, nargs=3, default=[16, 512, 512],
        metavar=('T', 'H', 'W'), help='clip size (default 16 512 512)')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='clips per batch')
    parser.add_argument(
        '--sentence', default=DEFAULT_SENTENCE,
        help='the referring expression of every clip')
    parser.add_argument(
        '--repeat', type=int, default=3,
        help='timed runs per module after one warm-up (median reported)')
    parser.add_argument(
        '--warmup', type=int, default=1,
        help='untimed runs per module before the timed ones (default 1)')
    parser.add_argument(
        '--depth', type=int, choices=[1, 2], default=1,
        help='1: the top-level modules; 2: also their children')
    parser.add_argument(
        '--time-depth', type=int, choices=[1, 2], default=None,
        help='time and measure memory only down to this level (default: '
        '--depth); deeper rows get parameters and FLOPs only')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu or cuda[:i] (default: cuda when available)')
    parser.add_argument(
        '--random-word-vectors', action='store_true',
        help='use random word vectors of the configured dims even when the '
        'vector file exists')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config entries, e.g. model.neck.lstm_input_proj=256')
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args(argv)
    if min(args.shape) < 1:
        parser.error(f'--shape must be positive, got {args.shape}')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.repeat < 1:
        parser.error(f'--repeat must be >= 1, got {args.repeat}')
    if args.warmup < 0:
        parser.error(f'--warmup must be >= 0, got {args.warmup}')
    return args


# --------------------------------------------------------------------------
# model construction
# --------------------------------------------------------------------------
def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read ``path`` and apply ``cfg_options``; the config needs a
    ``model``."""
    if not osp.isfile(path):
        raise InputNotFoundError(f'config file not found: {path!r}')
    cfg = Config.fromfile(path)
    apply_cfg_options(cfg, cfg_options, path)
    if 'model' not in cfg:
        raise ConfigError(f'config {path!r} has no "model" entry')
    return cfg


def prepare_word_vectors(cfg: Config, sentence: str, tmp_dir: str,
                         force_random: bool = False) -> Optional[str]:
    """Point the text encoder at random word vectors when its file is
    missing (or ``force_random``).

    The substitute is a word2vec binary file in ``tmp_dir`` with one random
    vector of the configured ``dims`` (300 if unset) per word of
    ``sentence``. Returns a note for the output, or None when the config's
    own vectors are used (or the text encoder has none).
    """
    text_cfg = cfg.model.get('text_encoder')
    if text_cfg is None or 'word_vectors' not in text_cfg:
        return None
    wv = text_cfg.word_vectors
    if isinstance(wv, str):
        wv = dict(path=wv)
    wv = dict(wv)
    path, fmt, dims = wv.get('path'), wv.get('format', 'auto'), wv.get('dims')
    reason = 'requested by --random-word-vectors'
    if not force_random:
        try:
            read_vector_dims(path, fmt)
            return None
        except WordVectorsNotFoundError:
            reason = f'{path or fmt!r} not found'
    assumed = ''
    if dims is None:
        dims = DEFAULT_WORD_DIMS
        assumed = ' (word_vectors.dims unset: assumed)'
    words = sorted(set(tokenize(sentence))) or ['the']
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(words), dims)).astype(np.float32)
    out = osp.join(tmp_dir, 'random_word_vectors.bin')
    save_word2vec_binary(out, words, vectors)
    text_cfg.word_vectors = dict(path=out, format='word2vec_binary',
                                 dims=dims)
    return (f'word vectors: {reason}; using random vectors of {dims} '
            f'dims{assumed} for the {len(words)} words of the sentence '
            '(the GRU cost depends on the vector size only)')


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` in the cmdyseg scope (no ``init_weights``)."""
    register_all_modules(init_default_scope=True)
    return MODELS.build(cfg.model)


def make_inputs(batch_size: int, shape: Sequence[int], sentence: str,
                device: torch.device) -> Tuple[torch.Tensor, list]:
    """A random clip (B, 3, T, H, W) and B data samples with ``sentence``."""
    t, h, w = shape
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch_size, 3, t, h, w, generator=gen).to(device)
    samples = [
        ReferSegDataSample(
            metainfo=dict(sentence=sentence, img_shape=(h, w),
                          ori_shape=(h, w))) for _ in range(batch_size)
    ]
    return inputs, samples


def select_modules(model: nn.Module,
                   depth: int) -> List[Tuple[str, nn.Module, int]]:
    """``(name, module, level)`` of the top-level modules (level 1) and,
    with ``depth=2``, of their children (level 2) right after each parent.

    Children are found by looking through single-child wrappers: a module
    with exactly one child is replaced by that child's children (e.g.
    ``backbone`` -> ``backbone.backbone.{conv1, layer1, ...}``,
    ``head`` -> ``head.blocks.{0, 1, 2}``); a chain ending in a leaf gives
    the leaf (``text_encoder`` -> ``text_encoder.gru``). A head's
    ``loss_decode`` is not looked at: losses are not part of the forward.
    """

    def children(m):
        return [(k, c) for k, c in m.named_children() if k != 'loss_decode']

    rows = []
    for name, module in model.named_children():
        rows.append((name, module, 1))
        if depth < 2:
            continue
        prefix, current = name, module
        kids = children(current)
        while len(kids) == 1:
            prefix = f'{prefix}.{kids[0][0]}'
            current = kids[0][1]
            kids = children(current)
        if not kids:
            if current is not module:
                rows.append((prefix, current, 2))
            continue
        rows.extend((f'{prefix}.{kid}', sub, 2) for kid, sub in kids)
    return rows


def count_params(module: nn.Module) -> Tuple[int, int]:
    """(all, trainable) parameter counts of ``module``."""
    params = list(module.parameters())
    return (sum(p.numel() for p in params),
            sum(p.numel() for p in params if p.requires_grad))


# --------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------
def cmdyconv_flops(batch: int, channels: int, height: int, width: int,
                   groups: int, mask_groups: int,
                   offset_groups: int = 0) -> Dict[str, int]:
    """Analytic FLOPs of one ``cmdyconv(x, kt, kv, offset, groups)`` call
    (eq. 11 / 12 without the pointwise convolution ``P``), following the
    operation's own steps:

    * ``kt_scale``: ``x * k^T``, 1 multiply per element of x (B*C*H*W);
    * ``group_sum``: when every group shares its mask and offsets
      (``mask_groups`` and ``offset_groups`` divide ``groups``) the N
      scaled channels of a group are summed first: B*(C-G)*H*W adds, and
      the window sum then runs on ``C' = G`` channels (else ``C' = C``);
    * ``window``: one multiply-add (2 FLOPs) per (channel of C', window
      position of the 3x3, pixel): the product with ``k^V`` and the sum;
    * ``bilinear`` (only with offsets, ``offset_groups > 0``): 4
      multiply-adds (8 FLOPs) per (channel of C', window position, pixel)
      to interpolate the four neighbours, plus 10 FLOPs per (offset group,
      window position, pixel) for the sampling position and the four
      weights.

    Args:
        batch, channels, height, width (int): B, C, H, W of ``x``.
        groups (int): G.
        mask_groups (int): M, channels of ``k^V`` divided by 9.
        offset_groups (int): O, channels of the offsets divided by 18; 0
            without offsets (CMDyConv).

    Returns:
        dict: the four parts (FLOPs) and their ``total``.
    """
    pixels = batch * height * width
    shared = groups % mask_groups == 0 and (offset_groups == 0
                                            or groups % offset_groups == 0)
    summed = shared and channels != groups
    eff = groups if summed else channels
    parts = dict(
        kt_scale=channels * pixels,
        group_sum=(channels - groups) * pixels if summed else 0,
        window=2 * eff * KERNEL_POINTS * pixels,
        bilinear=(8 * eff + 10 * offset_groups) * KERNEL_POINTS * pixels
        if offset_groups else 0)
    parts['total'] = sum(parts.values())
    return parts


def _block_cmdyconv_flops(block: CMDyConvBlock, x: torch.Tensor) -> int:
    b, c, h, w = x.shape
    mask_groups = block.kv_conv.out_channels // KERNEL_POINTS
    offset_groups = (0 if block.offset_conv is None else
                     block.offset_conv.out_channels // (2 * KERNEL_POINTS))
    return cmdyconv_flops(b, c, h, w, block.groups, mask_groups,
                          offset_groups)['total']


def _flops_by_module(model: nn.Module,
                     counter: FlopCounterMode) -> Dict[str, int]:
    """``FlopCounterMode``'s per-module totals keyed by the names of
    ``model.named_modules()`` (``''``: the whole model)."""
    root = type(model).__name__
    counts = {}
    for key, ops in counter.get_flop_counts().items():
        if key.startswith(root + '.'):
            counts[key[len(root) + 1:]] = int(sum(ops.values()))
    counts[''] = int(counter.get_total_flops())
    return counts


# --------------------------------------------------------------------------
# timing and memory
# --------------------------------------------------------------------------
def _map_tensors(obj: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple):
        items = [_map_tensors(o, fn) for o in obj]
        # named tuples (e.g. a GRU's PackedSequence) keep their type
        return type(obj)(*items) if hasattr(obj, '_fields') else tuple(items)
    if isinstance(obj, list):
        return [_map_tensors(o, fn) for o in obj]
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    return obj


def _tensors(obj: Any) -> List[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _shapes(obj: Any) -> Any:
    """Tensors -> their shape, other leaves -> their type name."""
    if isinstance(obj, torch.Tensor):
        return list(obj.shape)
    if isinstance(obj, (tuple, list)):
        return [_shapes(o) for o in obj]
    if isinstance(obj, dict):
        return {str(k): _shapes(v) for k, v in obj.items()}
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return type(obj).__name__


def record_forward(model: nn.Module, modules: Dict[str, nn.Module],
                   inputs: torch.Tensor, samples: list) -> Dict[str, dict]:
    """Run one training forward of ``model`` (grad enabled, no backward)
    under ``FlopCounterMode`` and record

    * for each of ``modules`` (name -> module): ``calls``, the
      ``(args, kwargs)`` of every call, tensors detached and cloned with
      ``requires_grad`` as it was in that forward, and ``output_shapes`` of
      its first call;
    * for every module of ``model`` (``named_modules()`` names, ``''`` the
      whole model): ``flops``, what the counter recorded in the module (its
      sub-modules included), and ``flops_analytic``, the FLOPs of the
      CMDyConv operations run inside it (:func:`cmdyconv_flops` of every
      :class:`CMDyConvBlock` call).

    Returns:
        dict: ``calls``, ``output_shapes``, ``flops``, ``flops_analytic``,
        each a dict by module name.
    """
    calls: Dict[str, list] = {name: [] for name in modules}
    out_shapes: Dict[str, Any] = {}
    block_flops: Dict[str, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        return t.detach().clone().requires_grad_(t.requires_grad)

    handles = []
    for name, module in modules.items():

        def pre_hook(mod, args, kwargs, name=name):
            calls[name].append(
                (_map_tensors(args, keep), _map_tensors(kwargs, keep)))

        def hook(mod, args, output, name=name):
            out_shapes.setdefault(name, _shapes(output))

        handles.append(
            module.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(module.register_forward_hook(hook))
    for name, module in model.named_modules():
        if isinstance(module, CMDyConvBlock):

            def block_hook(mod, args, name=name):
                block_flops[name] = (
                    block_flops.get(name, 0) +
                    _block_cmdyconv_flops(mod, args[0]))

            handles.append(module.register_forward_pre_hook(block_hook))
    try:
        with FlopCounterMode(display=False) as counter:
            out = model(inputs, samples)
        del out
    finally:
        for handle in handles:
            handle.remove()
    analytic = {}
    for name, _ in model.named_modules():
        analytic[name] = sum(
            v for block, v in block_flops.items()
            if not name or block == name or block.startswith(name + '.'))
    return dict(
        calls=calls,
        output_shapes=out_shapes,
        flops=_flops_by_module(model, counter),
        flops_analytic=analytic)


class _Runner:
    """Re-runs the recorded calls of one module."""

    def __init__(self, module: nn.Module, calls: list,
                 device: torch.device):
        self.module = module
        self.calls = calls
        self.device = device
        self.proj = None

    def _sync(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def _clear_grads(self):
        self.module.zero_grad(set_to_none=True)
        for args, kwargs in self.calls:
            for t in _tensors((args, kwargs)):
                t.grad = None

    def forward(self) -> List[torch.Tensor]:
        outs = []
        for args, kwargs in self.calls:
            outs.extend(_tensors(self.module(*args, **kwargs)))
        return outs

    def step(self) -> Tuple[float, Optional[float]]:
        """One forward + backward (gradients cleared first); returns their
        times in seconds (backward None when no output requires grad)."""
        self._clear_grads()
        self._sync()
        start = time.perf_counter()
        outs = self.forward()
        self._sync()
        fwd = time.perf_counter() - start
        needs_grad = [t for t in outs if t.requires_grad]
        if not needs_grad:
            return fwd, None
        if self.proj is None:
            gen = torch.Generator().manual_seed(1)
            self.proj = [
                torch.randn(t.shape, generator=gen).to(t.device, t.dtype)
                for t in needs_grad
            ]
        loss = sum((t * p).sum() for t, p in zip(needs_grad, self.proj))
        self._sync()
        start = time.perf_counter()
        loss.backward()
        self._sync()
        return fwd, time.perf_counter() - start

    def measure(self, repeat: int, warmup: int = 1) -> Dict[str, Any]:
        """``warmup`` untimed steps, then ``repeat`` timed ones.

        Peak memory (see :meth:`_memory_step`) is taken on the first
        warm-up step on CPU (the profiler slows it; an extra step when
        ``warmup`` is 0) and on the last timed step on CUDA.

        Returns:
            dict: ``forward_s`` and ``backward_s`` (lists of the timed
            steps; backward empty when no output requires grad),
            ``peak_bytes`` and ``memory_method``.
        """
        cuda = self.device.type == 'cuda'
        result = dict(forward_s=[], backward_s=[])
        if not cuda:
            peak, method = self._memory_step()
            warmup = max(warmup - 1, 0)
        for _ in range(warmup):
            self.step()
        for i in range(repeat):
            if cuda and i == repeat - 1:
                peak, method = self._memory_step(record=result)
                continue
            fwd, bwd = self.step()
            result['forward_s'].append(fwd)
            if bwd is not None:
                result['backward_s'].append(bwd)
        result.update(peak_bytes=peak, memory_method=method)
        return result

    def _memory_step(self, record: Optional[dict] = None):
        """One step measuring the peak memory above what was allocated
        before it (bytes), and the method used; the times go to
        ``record`` when given (CUDA only: no profiler there)."""
        self._clear_grads()
        if self.device.type == 'cuda':
            self._sync()
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            fwd, bwd = self.step()
            peak = torch.cuda.max_memory_allocated(self.device)
            if record is not None:
                record['forward_s'].append(fwd)
                if bwd is not None:
                    record['backward_s'].append(bwd)
            return float(peak - base), 'torch.cuda.max_memory_allocated'
        try:
            return _profiled_peak(self.step), 'torch.profiler'
        except Exception:  # the private profiler API changed: fall back
            self._clear_grads()
            return _rss_peak(self.step), 'peak RSS (VmHWM)'


def _profiled_peak(fn: Callable[[], Any]) -> float:
    """Highest running total of the CPU allocations minus frees recorded by
    ``torch.profiler(profile_memory=True)`` while ``fn`` runs."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                 record_shapes=False) as prof:
        fn()
    events = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        extra = node.extra_fields
        if type(extra).__name__ == '_ExtraFields_Allocation':
            if extra.device.type == 'cpu':
                events.append((node.start_time_ns, extra.alloc_size))
    if not events:
        raise RuntimeError('the profiler recorded no allocation')
    events.sort(key=lambda e: e[0])
    total = peak = 0
    for _, size in events:
        total += size
        peak = max(peak, total)
    return float(peak)


def _status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'/proc/self/status has no {key}')


def _rss_peak(fn: Callable[[], Any]) -> float:
    """Growth of the peak RSS while ``fn`` runs (Linux)."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    base = _status_kib('VmRSS')
    fn()
    return float(max(_status_kib('VmHWM') - base, 0) * 1024)


# --------------------------------------------------------------------------
# machine
# --------------------------------------------------------------------------
def machine_info(device: torch.device) -> Dict[str, Any]:
    """CPU model, cores, torch threads, device, versions, load average."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(
        cpu=cpu,
        cpu_cores=os.cpu_count(),
        usable_cores=(len(os.sched_getaffinity(0)) if hasattr(
            os, 'sched_getaffinity') else os.cpu_count()),
        torch_threads=torch.get_num_threads(),
        device=str(device),
        python=platform.python_version(),
        torch=torch.__version__,
        cmdyseg=getattr(cmdyseg, '__version__', 'unknown'))
    try:
        import mmcv
        info['mmcv'] = mmcv.__version__
    except ImportError:
        info['mmcv'] = None
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    if hasattr(os, 'getloadavg'):
        info['load_average_start'] = [round(v, 2) for v in os.getloadavg()]
    return info


def _cmdyconv_backends(model: nn.Module, device: torch.device) -> List[str]:
    """The backends the CMDyConv blocks resolve to on ``device``."""
    names = set()
    for module in model.modules():
        if isinstance(module, CMDyConvBlock):
            names.add(get_cmdyconv_backend(module.backend, device)[0])
    return sorted(names)


# --------------------------------------------------------------------------
# the measurement
# --------------------------------------------------------------------------
def measure(config: str,
            shape: Sequence[int] = (16, 512, 512),
            batch_size: int = 1,
            sentence: str = DEFAULT_SENTENCE,
            repeat: int = 3,
            warmup: int = 1,
            depth: int = 1,
            time_depth: Optional[int] = None,
            device: str = 'cpu',
            cfg_options: Optional[dict] = None,
            random_word_vectors: bool = False,
            progress: bool = True) -> Dict[str, Any]:
    """Measure a model; see the module docstring.

    Returns:
        dict: JSON-able, with ``settings``, ``machine``, ``notes`` and
        ``rows``, one per module and the whole model last (name
        ``'total'``, level 0), each with ``params``, ``trainable_params``,
        ``flops_counter``, ``flops_analytic``, ``flops`` (their sum),
        ``forward_ms`` / ``backward_ms`` (medians; backward None when no
        output requires grad), ``forward_ms_all`` / ``backward_ms_all``,
        ``peak_memory_mib`` (the three None for rows deeper than
        ``time_depth``), ``calls``, ``input_shapes``, ``output_shapes``.
    """
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise DeviceError(f'device {device} requested but CUDA is not '
                          'available')
    start = time.perf_counter()

    def log(msg):
        if progress:
            print(f'[{time.perf_counter() - start:7.1f} s] {msg}',
                  file=sys.stderr, flush=True)

    torch.manual_seed(0)
    cfg = load_config(config, cfg_options)
    notes = []
    machine = machine_info(device)
    with tempfile.TemporaryDirectory(prefix='cmdyseg_complexity_') as tmp:
        note = prepare_word_vectors(cfg, sentence, tmp, random_word_vectors)
        if note:
            notes.append(note)
        model = build_model(cfg).to(device)
        model.train()
        inputs, samples = make_inputs(batch_size, shape, sentence, device)
        # the vectors load lazily on the first forward: load them while
        # the temporary file exists
        text_encoder = getattr(model, 'text_encoder', None)
        if hasattr(text_encoder, 'load_vectors'):
            text_encoder.load_vectors()
    if time_depth is None:
        time_depth = depth
    selected = select_modules(model, depth)
    modules = {'': model}
    modules.update((name, mod) for name, mod, _ in selected)
    log('recording one forward pass (inputs, FLOPs)')
    record = record_forward(model, modules, inputs, samples)
    calls = record['calls']
    backends = _cmdyconv_backends(model, device)
    if backends:
        notes.append('CMDyConv backend: ' + ', '.join(backends) +
                     '; its FLOPs are analytic (the counter misses them)')
    notes.append('FLOPs: 2 per multiply-add of conv / matmul ops '
                 '(FlopCounterMode), forward pass only; elementwise ops '
                 'not counted')

    rows = []
    mem_methods = set()
    order = list(selected) + [('', model, 0)]
    for name, module, level in order:
        if not calls[name]:
            notes.append(f'{name}: not called in the forward pass, skipped')
            continue
        fwd, bwd, peak = [], [], None
        if level <= time_depth:
            log(f'timing {name or "the whole model"}')
            stats = _Runner(module, calls[name], device).measure(
                repeat, warmup)
            mem_methods.add(stats['memory_method'])
            fwd = [t * 1e3 for t in stats['forward_s']]
            bwd = [t * 1e3 for t in stats['backward_s']]
            peak = stats['peak_bytes'] / MIB
        params, trainable = count_params(module)
        counted = record['flops'].get(name, 0)
        analytic = record['flops_analytic'].get(name, 0)
        rows.append(
            dict(
                name=name or 'total',
                level=level,
                params=params,
                trainable_params=trainable,
                flops_counter=counted,
                flops_analytic=analytic,
                flops=counted + analytic,
                forward_ms=statistics.median(fwd) if fwd else None,
                backward_ms=statistics.median(bwd) if bwd else None,
                forward_ms_all=fwd,
                backward_ms_all=bwd,
                peak_memory_mib=peak,
                calls=len(calls[name]),
                input_shapes=_shapes(calls[name][0][0]),
                output_shapes=record['output_shapes'].get(name)))
        calls[name] = []  # free the recorded inputs
    log('done')
    if hasattr(os, 'getloadavg'):
        machine['load_average_end'] = [round(v, 2) for v in os.getloadavg()]
    machine['memory_method'] = ', '.join(sorted(mem_methods))
    machine['wall_time_s'] = round(time.perf_counter() - start, 1)
    settings = dict(
        config=config,
        shape=list(shape),
        batch_size=batch_size,
        sentence=sentence,
        repeat=repeat,
        warmup=warmup,
        depth=depth,
        time_depth=time_depth,
        cfg_options=cfg_options or {},
        mode='train (frozen stages in eval)')
    return dict(settings=settings, machine=machine, notes=notes, rows=rows)


def _fmt_count(value: float, unit: float, digits: int = 2) -> str:
    return f'{value / unit:.{digits}f}'


def _fmt_opt(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.1f}'


def format_table(results: Dict[str, Any]) -> str:
    """The rows as a Markdown table, preceded by the machine and notes."""
    s, m = results['settings'], results['machine']
    t, h, w = s['shape']
    lines = [
        f"config: {s['config']}",
        f"input: {s['batch_size']} x 3 x {t} x {h} x {w} (B x C x T x H x "
        f"W), sentence {s['sentence']!r}, {s['mode']}",
        f"cfg-options: {s['cfg_options'] or 'none'}",
        f"machine: {m['cpu']}, {m['usable_cores']}/{m['cpu_cores']} cores, "
        f"torch threads {m['torch_threads']}, device {m['device']}" +
        (f" ({m['gpu']})" if m.get('gpu') else '') +
        f", torch {m['torch']}, mmcv {m['mmcv']}",
        f"load average (1/5/15 min): start {m.get('load_average_start')}, "
        f"end {m.get('load_average_end')}",
        f"times: median of {s['repeat']} runs after {s['warmup']} "
        f"warm-up, down to level {s.get('time_depth', s['depth'])}; memory: "
        f"{m['memory_method'] or '-'}",
    ]
    lines += [f'note: {n}' for n in results['notes']]
    header = ('| module | params (M) | trainable (M) | GFLOPs counter | '
              'GFLOPs CMDyConv (analytic) | GFLOPs total | forward (ms) | '
              'backward (ms) | peak mem (MiB) |')
    lines += ['', header, '|' + '---|' * 9]
    for row in results['rows']:
        name = row['name']
        if row['level'] == 2:
            name = '&nbsp;&nbsp;' + name
        elif row['level'] == 0:
            name = f'**{name}**'
        lines.append(
            f"| {name} | {_fmt_count(row['params'], 1e6, 3)} | "
            f"{_fmt_count(row['trainable_params'], 1e6, 3)} | "
            f"{_fmt_count(row['flops_counter'], 1e9, 3)} | "
            f"{_fmt_count(row['flops_analytic'], 1e9, 3)} | "
            f"{_fmt_count(row['flops'], 1e9, 3)} | "
            f"{_fmt_opt(row['forward_ms'])} | "
            f"{_fmt_opt(row['backward_ms'])} | "
            f"{_fmt_opt(row['peak_memory_mib'])} |")
    return '\n'.join(lines)


def write_json(results: Dict[str, Any], path: str) -> None:
    """Write ``results`` to ``path`` atomically (temp file + replace)."""
    with atomic_write(path, 'w') as f:
        json.dump(results, f, indent=2)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    results = measure(
        args.config,
        shape=args.shape,
        batch_size=args.batch_size,
        sentence=args.sentence,
        repeat=args.repeat,
        warmup=args.warmup,
        depth=args.depth,
        time_depth=args.time_depth,
        device=args.device,
        cfg_options=args.cfg_options,
        random_word_vectors=args.random_word_vectors)
    print(format_table(results))
    if args.json:
        write_json(results, args.json)
        print(f'results written to {args.json}')
    sys.stdout.flush()
    return results


if __name__ == '__main__':
    run_cli(main, prog='get_model_complexity.py')
