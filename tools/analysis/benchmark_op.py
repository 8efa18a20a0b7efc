# Copyright (c) cmdyseg contributors. All rights reserved.
"""Time every available CMDyConv backend against the ``F.unfold``
formulation.

For each shape and layout, every backend runs forward (with autograd
recording, as in training) and forward + backward (gradients of ``x``,
``kt``, ``kv`` and the offsets) on the same random inputs in the same
process, interleaved (each round runs every backend once, so that load
from other processes hits all alike); the median of ``--repeats`` rounds
after one warm-up is reported, with the median over rounds of its ratio to
the baseline of the same round:

* ``unfold``: the plain ``F.unfold`` formulation *without offsets* --
  ``unfold(x * kt)`` (B, C * 9, HW) times ``kV`` (expanded to every
  channel), summed over each group -- written here independently of the
  library's backends.

(On a GPU machine without mmcv / mmengine,
``tools/analysis/benchmark_op_cuda.py`` times the Triton kernels against
torchvision's ``deform_conv2d`` with torch, triton and torchvision only.)

It also prints the bytes-moved lower bound of the operation (every input
read once and every output written once: forward reads ``x, kt, kv,
offset`` and writes the result; backward additionally reads the output
gradient and the inputs again and writes one gradient per input) and the
peak memory of one forward + backward: on CUDA from the caching
allocator, on CPU as the peak-RSS growth of a fresh subprocess (Linux
``VmHWM``).

Shapes (B, C, G, H = W):

* ``tiny``: 8, 64, 16, 16 -- the tiny config's head (batch 8, D_M = 64,
  16 groups, 16 x 16 maps).
* ``issue``: 2, 256, 64, 64 -- where mmcv's CPU kernel was first timed.
* ``paper``: 9, 256, 64, 128 -- the paper's head (batch 9, 512 px input).

With ``--train-step CONFIG`` it instead times one full training step
(``model.loss`` forward + backward, batch ``--batch-size``, random clip of
``--clip`` T H W) of the model built from CONFIG once per ``--backends``
entry (the heads' ``backend`` argument), same weights, same process.

Examples (what ``configs/cmdyconv/README.md`` reports), TINY_CFG being
configs/cmdyconv/dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-\
8x64x64.py::

    python tools/analysis/benchmark_op.py --shapes tiny issue \\
        --layouts channel-off1 channel-none group-off1 --threads 1 \\
        --out work_dirs/benchmark_op.md
    python tools/analysis/benchmark_op.py --train-step $TINY_CFG \\
        --backends mmcv torch cpp --threads 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

SHAPES = {
    'tiny': (8, 64, 16, 16),
    'issue': (2, 256, 64, 64),
    'paper': (9, 256, 64, 128),
}


# cmdyseg.utils.cli.DEBUG_HELP, spelt out: this file is loaded by
# benchmark_op_cuda.py, which must not import cmdyseg
DEBUG_HELP = (
    'Bad input ends the program with status 1 and one line "%(prog)s: '
    'error: ..." on stderr; add --debug, or set CMDYSEG_DEBUG=1, to see the '
    'traceback instead.')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], epilog=DEBUG_HELP)
    parser.add_argument(
        '--shapes', nargs='+', default=['tiny', 'paper'],
        choices=sorted(SHAPES))
    parser.add_argument(
        '--backends', nargs='+', default=None,
        help='backends to time (default: every available one)')
    parser.add_argument(
        '--layouts', nargs='+', default=['channel-off1'],
        help='kV layout and offsets: {channel,group}-{none,off1,offG} '
        '(channel: per-channel kV, the faithful default; off1: one offset '
        'field; offG: one per group)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument(
        '--threads', type=int, default=None,
        help='torch CPU threads (default: torch default)')
    parser.add_argument(
        '--no-memory', action='store_true',
        help='skip the peak-memory measurement')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--out', default=None, help='also write the table (markdown) here')
    parser.add_argument(
        '--json', default=None, help='also write the raw results here')
    parser.add_argument(
        '--train-step', metavar='CONFIG', default=None,
        help='time a full training step of this config\'s model instead')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--clip', type=int, nargs=3, default=[8, 64, 64],
                        metavar=('T', 'H', 'W'))
    # internal: one forward + backward in this process, print peak memory
    parser.add_argument('--memory-probe', nargs=3, default=None,
                        metavar=('SHAPE', 'LAYOUT', 'BACKEND'),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def parse_layout(layout, groups, channels):
    kv_kind, off_kind = layout.split('-')
    if kv_kind not in ('channel', 'group') or off_kind not in ('none',
                                                               'off1',
                                                               'offG'):
        raise ValueError(f'--layouts: bad layout {layout!r}; expected '
                         '{channel,group}-{none,off1,offG}')
    mask_groups = channels if kv_kind == 'channel' else groups
    offset_groups = {'none': 0, 'off1': 1, 'offG': groups}[off_kind]
    return mask_groups, offset_groups


def make_inputs(shape, layout, device, seed):
    b, c, g, h = shape
    mg, og = parse_layout(layout, g, c)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, h, generator=gen)
    kt = torch.rand(b, c, generator=gen) * 2 - 1
    kv = torch.rand(b, mg * 9, h, h, generator=gen)
    offset = (1.5 * torch.randn(b, og * 18, h, h, generator=gen)
              if og else None)
    tensors = [t.to(device).requires_grad_(True)
               for t in (x, kt, kv, offset) if t is not None]
    if offset is None:
        tensors.append(None)
    return tensors, g


def unfold_baseline(x, kt, kv, offset, groups):
    """The ``F.unfold`` formulation without offsets (``offset`` ignored)."""
    b, c, h, w = x.shape
    mg = kv.shape[1] // 9
    cols = F.unfold(x * kt.view(b, c, 1, 1), 3, padding=1)
    cols = cols.view(b, mg, c // mg, 9, h * w)
    prod = cols * kv.view(b, mg, 1, 9, h * w)
    return prod.view(b, groups, -1, h * w).sum(2).view(b, groups, h, w)


def op_for(name):
    if name == 'unfold':
        return unfold_baseline
    from cmdyseg.models.layers import cmdyconv

    def run(x, kt, kv, offset, groups):
        return cmdyconv(x, kt, kv, offset, groups, backend=name)

    return run


def bytes_lower_bound(tensors, groups):
    x, kt, kv, offset = tensors
    b, _, h, w = x.shape
    ins = sum(t.numel() * t.element_size()
              for t in (x, kt, kv, offset) if t is not None)
    out = b * groups * h * w * x.element_size()
    fwd = ins + out
    # backward: read gout and the inputs, write one gradient per input
    return fwd, fwd + out + 2 * ins


def sync(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def _calls(name, tensors, groups):
    fn = op_for(name)
    x, kt, kv, offset = tensors
    leaves = [t for t in tensors if t is not None]

    def fwd():
        return fn(x, kt, kv, offset, groups)

    def fwd_bwd():
        out = fwd()
        return torch.autograd.grad(out, leaves, torch.ones_like(out))

    return {'fwd': fwd, 'fwd+bwd': fwd_bwd}


def time_backends(entries, groups, device, repeats):
    """Interleaved timing: every round runs each backend once, so that load
    from other processes hits all of them alike.

    Args:
        entries (list[tuple[str, list]]): (backend name, its inputs); the
            first one is the baseline.

    Returns:
        dict: name -> {'fwd': s, 'fwd+bwd': s, 'fwd_ratio': r,
        'fwd+bwd_ratio': r}: median times and the median over rounds of
        the time relative to the baseline of the same round.
    """
    calls = {name: _calls(name, tensors, groups) for name, tensors in entries}
    times = {name: {'fwd': [], 'fwd+bwd': []} for name in calls}
    for label in ('fwd', 'fwd+bwd'):
        for name in calls:
            calls[name][label]()  # warm-up (and Triton compilation)
        for _ in range(repeats):
            for name in calls:
                sync(device)
                start = time.perf_counter()
                calls[name][label]()
                sync(device)
                times[name][label].append(time.perf_counter() - start)
    base = entries[0][0]
    results = {}
    for name in calls:
        res = {}
        for label in ('fwd', 'fwd+bwd'):
            res[label] = statistics.median(times[name][label])
            res[label + '_ratio'] = statistics.median(
                t / b for t, b in zip(times[name][label],
                                      times[base][label]))
        results[name] = res
    return results


def _vm_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def memory_probe(shape_name, layout, name, device, seed):
    """Peak memory (bytes) of one forward + backward above the inputs."""
    tensors, groups = make_inputs(SHAPES[shape_name], layout, device, seed)
    leaves = [t for t in tensors if t is not None]
    fn = op_for(name)
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out = fn(*tensors, groups)
        torch.autograd.grad(out, leaves, torch.ones_like(out))
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    # reset the peak RSS (Linux >= 4.0), then measure its growth
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    base = _vm_kib('VmRSS')
    out = fn(*tensors, groups)
    torch.autograd.grad(out, leaves, torch.ones_like(out))
    return (_vm_kib('VmHWM') - base) * 1024


def measure_memory(args, shape_name, layout, name):
    cmd = [
        sys.executable, os.path.abspath(__file__), '--device', args.device,
        '--seed', str(args.seed), '--memory-probe', shape_name, layout, name
    ]
    if args.threads:
        cmd += ['--threads', str(args.threads)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return None
    return int(res.stdout.strip().splitlines()[-1])


def available_backends(device):
    import cmdyseg  # noqa: F401  (compatibility fixes first)
    from cmdyseg.models.layers import available_cmdyconv_backends
    names = available_cmdyconv_backends()
    if torch.device(device).type != 'cuda' and 'triton' in names and \
            os.environ.get('TRITON_INTERPRET') != '1':
        names.remove('triton')
    return names


def _cpp_isa():
    """', cpp kernels: <instruction set>' when the compiled extension is
    built, else ''."""
    from cmdyseg.models.layers.cmdyconv_cpu import load_extension
    ext = load_extension()
    return f', cpp kernels: {ext.isa()}' if ext is not None else ''


def fmt_ms(t):
    return f'{t * 1e3:.2f}'


def fmt_bytes(n):
    if n is None:
        return 'n/a'
    return f'{n / 2**20:.1f} MiB'


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        import cmdyseg  # noqa: F401
        shape_name, layout, name = args.memory_probe
        print(memory_probe(shape_name, layout, name, args.device, args.seed))
        return
    if args.train_step:
        train_step_benchmark(args)
        return
    backends = args.backends or available_backends(args.device)
    rows, raw = [], []
    header = ('| shape (B, C, G, H=W) | layout | backend | fwd ms | '
              'fwd x unfold | fwd+bwd ms | fwd+bwd x unfold | '
              'peak mem (fwd+bwd) |')
    rows.append(header)
    rows.append('|' + '---|' * 8)
    for shape_name in args.shapes:
        shape = SHAPES[shape_name]
        for layout in args.layouts:
            tensors, groups = make_inputs(shape, layout, args.device,
                                          args.seed)
            lb_fwd, lb_all = bytes_lower_bound(tensors, groups)
            base_tensors = list(tensors[:3]) + [None]
            timed = time_backends([('unfold', base_tensors)] +
                                  [(name, tensors) for name in backends],
                                  groups, args.device, args.repeats)
            entries = list(timed.items())
            for name, res in entries:
                mem = None
                if not args.no_memory:
                    mem = measure_memory(
                        args, shape_name,
                        layout.split('-')[0] + '-none'
                        if name == 'unfold' else layout, name)
                rec = dict(
                    shape=shape_name, dims=shape, layout=layout,
                    backend=name, fwd_s=res['fwd'],
                    fwd_bwd_s=res['fwd+bwd'],
                    fwd_ratio=res['fwd_ratio'],
                    fwd_bwd_ratio=res['fwd+bwd_ratio'],
                    peak_bytes=mem, lower_bound_fwd_bytes=lb_fwd,
                    lower_bound_fwd_bwd_bytes=lb_all)
                raw.append(rec)
                label = ('unfold (no offsets)' if name == 'unfold' else name)
                rows.append(
                    f'| {shape_name} {shape} | {layout} | {label} | '
                    f'{fmt_ms(res["fwd"])} | {rec["fwd_ratio"]:.2f} | '
                    f'{fmt_ms(res["fwd+bwd"])} | '
                    f'{rec["fwd_bwd_ratio"]:.2f} | {fmt_bytes(mem)} |')
                print(rows[-1], flush=True)
            rows.append(
                f'| {shape_name} {shape} | {layout} | bytes-moved lower '
                f'bound | {fmt_bytes(lb_fwd)} | | {fmt_bytes(lb_all)} | | |')
            print(rows[-1], flush=True)
    machine = (f'device={args.device}, torch {torch.__version__}, '
               f'{torch.get_num_threads()} CPU threads{_cpp_isa()}, '
               f'median of {args.repeats} interleaved rounds')
    table = '\n'.join(rows) + f'\n\n{machine}\n'
    print('\n' + table)
    for path, text in ((args.out, table),
                       (args.json, json.dumps(raw, indent=1))):
        if path:
            _write_atomic(path, text)


def _load_sibling(name):
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        name + '.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_step_benchmark(args):
    """Median time of ``model.loss`` forward + backward per backend."""
    from mmengine.structures import PixelData
    complexity = _load_sibling('get_model_complexity')
    sentence = complexity.DEFAULT_SENTENCE
    names = args.backends or ['mmcv', 'torch', 'auto']
    cfg = complexity.load_config(args.train_step)
    rows = [f'train step of {os.path.basename(args.train_step)}: batch '
            f'{args.batch_size}, clip {tuple(args.clip)}, device '
            f'{args.device}, {torch.get_num_threads()} CPU '
            f'threads{_cpp_isa()}, median of {args.repeats} steps', '',
            '| head backend | resolved | step s | x first | loss |',
            '|---|---|---|---|---|']
    with tempfile.TemporaryDirectory() as tmp:
        note = complexity.prepare_word_vectors(cfg, sentence, tmp)
        if note:
            rows.insert(1, note)
        inputs, samples = complexity.make_inputs(
            args.batch_size, args.clip, sentence, torch.device(args.device))
        gen = torch.Generator().manual_seed(args.seed)
        for sample in samples:
            mask = torch.rand(1, *args.clip[1:], generator=gen) > 0.7
            sample.gt_mask = PixelData(data=mask.to(torch.uint8))
            # the tiny models' auxiliary head reads every actor's action
            sample.gt_action_map = PixelData(data=mask.to(torch.uint8))
        first = None
        for name in names:
            cfg.model.head.backend = name
            torch.manual_seed(args.seed)
            model = complexity.build_model(cfg).to(args.device).train()
            resolved = complexity._cmdyconv_backends(
                model, torch.device(args.device))

            def step():
                model.zero_grad(set_to_none=True)
                # every loss of the config, as a training step sums them
                loss = sum(model.loss(inputs, samples).values())
                loss.backward()
                return loss.item()

            loss = step()  # warm-up
            times = []
            for _ in range(args.repeats):
                sync(args.device)
                start = time.perf_counter()
                step()
                sync(args.device)
                times.append(time.perf_counter() - start)
            med = statistics.median(times)
            first = first or med
            rows.append(f'| {name} | {",".join(resolved)} | {med:.3f} | '
                        f'{med / first:.2f} | {loss:.6f} |')
            print(rows[-1], flush=True)
    table = '\n'.join(rows) + '\n'
    print('\n' + table)
    if args.out:
        _write_atomic(args.out, table)


def load_atomic():
    """:mod:`cmdyseg.fileio.atomic`, loaded from its file.

    It needs the standard library only, while importing the ``cmdyseg``
    package runs its ``__init__``, which needs mmengine: this script is
    also loaded by ``benchmark_op_cuda.py`` on GPU machines without it.
    """
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                        '..', 'cmdyseg', 'fileio', 'atomic.py')
    spec = importlib.util.spec_from_file_location('_cmdyseg_fileio_atomic',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_atomic(path, text):
    with load_atomic().atomic_write(path, 'w') as f:
        f.write(text)


if __name__ == '__main__':
    # imported here, not above: benchmark_op_cuda.py loads this file on
    # machines without cmdyseg's dependencies
    from cmdyseg.utils.cli import run_cli
    run_cli(main, prog='benchmark_op.py')
