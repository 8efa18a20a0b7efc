# Copyright (c) cmdyseg contributors. All rights reserved.
"""CUDA benchmark of the fused Triton CMDyConv against torchvision's
``deform_conv2d`` computing the same thing.

Self-contained on purpose: it needs only ``torch``, ``triton`` and
``torchvision`` (GPU machines often have no mmcv / mmengine build), and
loads :mod:`cmdyseg.models.layers.cmdyconv_triton`,
:mod:`cmdyseg.models.layers.cmdyconv_torch` and
:mod:`cmdyseg.fileio.atomic` from their files without importing the
package.

``torchvision`` computes CMDyConv as a modulated deformable grouped 3x3
convolution with an all-ones weight (G, N, 3, 3) on ``x * kt``; its mask
groups equal its offset groups, so a layout with per-channel k^V and one
offset field (the paper's) runs with C offset groups and the offset field
repeated C times -- what a user of torchvision would have to do. Gradients
flow to ``x``, ``kt``, ``kv`` and the *un-repeated* offsets in every
backend.

1. Correctness: on a small shape, every layout, forward and all gradients
   of both Triton kernel families ('triton': channels-last where there is
   one offset field; 'triton-tiled': (group, pixel block) tiles) against
   torchvision in float64 (and the library's ``'torch'`` backend).
2. Timing at the paper shape (B, C, G, H = W) = (9, 256, 64, 128):
   forward (autograd recording) and forward + backward, median of
   ``--repeats`` runs timed with CUDA events after warm-up, interleaved
   backend by backend; peak memory of one forward + backward above the
   inputs; ratios to torchvision and to the ``F.unfold`` formulation
   without offsets, and the bytes-moved lower bound.

Usage::

    python tools/analysis/benchmark_op_cuda.py --json results.json

Without a CUDA device it ends with one line ``benchmark_op_cuda.py: error:
...`` and status 1, and Ctrl-C with status 130, like the other tools; it
does not use their ``cmdyseg.utils.cli.run_cli`` (it must not import
cmdyseg), and has no other bad input to report: every other exception is
a bug and keeps its traceback (``--debug`` is not needed).
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
#: The name in messages, as cmdyseg.utils.cli.run_cli writes them.
PROG = 'benchmark_op_cuda.py'
LAYERS = os.path.join(HERE, '..', '..', 'cmdyseg', 'models', 'layers')
SHAPES = {'tiny': (8, 64, 16, 16), 'paper': (9, 256, 64, 128)}
LAYOUTS = ('channel-off1', 'group-off1', 'group-offG', 'channel-none',
           'group-none')


def _load(name, folder=LAYERS):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(folder, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the CPU benchmark's layout names, unfold formulation (without offsets)
# and bytes-moved lower bound (it imports only torch at module level)
_CPU = _load('benchmark_op', HERE)
parse_layout = _CPU.parse_layout
unfold_op = _CPU.unfold_baseline
bytes_lower_bound = _CPU.bytes_lower_bound


def make_inputs(shape, layout, dtype, seed=0, device='cuda'):
    b, c, g, h = shape
    mg, og = parse_layout(layout, g, c)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, h, generator=gen, dtype=torch.float64)
    kt = torch.rand(b, c, generator=gen, dtype=torch.float64) * 2 - 1
    kv = torch.rand(b, mg * 9, h, h, generator=gen, dtype=torch.float64)
    off = (1.5 * torch.randn(b, og * 18, h, h, generator=gen,
                             dtype=torch.float64) if og else None)
    out = [t.to(device, dtype).requires_grad_(True) if t is not None
           else None for t in (x, kt, kv, off)]
    return out, g


def _torchvision_deform_conv2d(*args, **kwargs):
    from torchvision.ops import deform_conv2d
    return deform_conv2d(*args, **kwargs)


# replaced in the CPU test of this script (torchvision is not installed
# there); same signature as torchvision.ops.deform_conv2d
DEFORM_CONV2D = _torchvision_deform_conv2d


def torchvision_op(x, kt, kv, offset, groups):
    """CMDyConv with torchvision's deform_conv2d (mask groups = offset
    groups, so the coarser of k^V / offsets is repeated)."""
    b, c, h, w = x.shape
    mg = kv.shape[1] // 9
    og = offset.shape[1] // 18 if offset is not None else 1
    dg = max(mg, og)
    if offset is None:
        offset = x.new_zeros(b, 18, h, w)
    off = offset.view(b, og, 1, 18, h, w).expand(b, og, dg // og, 18, h, w)
    mask = kv.view(b, mg, 1, 9, h, w).expand(b, mg, dg // mg, 9, h, w)
    weight = x.new_ones(groups, c // groups, 3, 3)
    return DEFORM_CONV2D(
        x * kt.view(b, c, 1, 1), off.reshape(b, dg * 18, h, w), weight,
        padding=1, mask=mask.reshape(b, dg * 9, h, w))


def backends(tri, tch):

    def triton_variant(channels_last):

        def run(x, kt, kv, offset, groups):
            tri.CHANNELS_LAST = channels_last
            try:
                return tri.triton_cmdyconv(x, kt, kv, offset, groups)
            finally:
                tri.CHANNELS_LAST = True

        return run

    def torch_backend(x, kt, kv, offset, groups):
        b, c, h, w = x.shape
        return tch.torch_cmdyconv(x * kt.view(b, c, 1, 1), kv, offset,
                                  groups)

    return {
        'unfold (no offsets)': unfold_op,
        'torchvision': torchvision_op,
        # channels-last kernels where they apply (one offset field)
        'triton': triton_variant(True),
        # the (group, pixel-block) kernels everywhere
        'triton-tiled': triton_variant(False),
        'torch': torch_backend,
    }


def grads(fn, tensors, groups, gout=None):
    leaves = [t for t in tensors if t is not None]
    out = fn(*tensors, groups)
    if gout is None:
        gout = torch.ones_like(out)
    return out, torch.autograd.grad(out, leaves, gout)


def check(ops, shape, dtype, report, device='cuda'):
    """Forward and every gradient of each backend against torchvision's."""
    ok = True
    b, _, g, h = shape
    for layout in LAYOUTS:
        tensors, groups = make_inputs(shape, layout, dtype, seed=1,
                                      device=device)
        gen = torch.Generator().manual_seed(2)
        gout = torch.randn(b, g, h, h, generator=gen,
                           dtype=torch.float64).to(device, dtype)
        ref_out, ref_g = grads(ops['torchvision'], tensors, groups, gout)
        scale = max([ref_out.abs().max().item()] +
                    [r.abs().max().item() for r in ref_g])
        tol = 1e-10 * scale if dtype == torch.float64 else 2e-5 * scale
        for name in ('triton', 'triton-tiled', 'torch'):
            try:
                out, gs = grads(ops[name], tensors, groups, gout)
                errs = [(out - ref_out).abs().max().item()]
                errs += [(a - r).abs().max().item()
                         for a, r in zip(gs, ref_g)]
                good = max(errs) <= tol
                text = ', '.join(f'{e:.2e}' for e in errs)
            except Exception as exc:  # noqa: BLE001  (reported as FAIL)
                errs, good, text = None, False, repr(exc)
            ok &= good
            print(f'check {shape} {layout} {str(dtype)[6:]} {name} vs '
                  f'torchvision: max abs err out/grads {text} '
                  f'(tol {tol:.1e}) {"OK" if good else "FAIL"}', flush=True)
            report.append(dict(shape=shape, layout=layout, dtype=str(dtype),
                               backend=name, errors=errs, tol=tol, ok=good))
    return ok


def time_one(fn, reps):
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def bench(ops, names, shape, layout, reps, report):
    tensors, groups = make_inputs(shape, layout, torch.float32)
    lb_fwd, lb_all = bytes_lower_bound(tensors, groups)
    rows = {}
    for name in names:
        fn = ops[name]
        args = list(tensors)
        if name.startswith('unfold'):
            args[3] = None
        lv = [t for t in args if t is not None]

        def fwd():
            return fn(*args, groups)

        def fwd_bwd():
            out = fn(*args, groups)
            return torch.autograd.grad(out, lv, torch.ones_like(out))

        try:
            for _ in range(2):
                fwd_bwd()  # compile + warm-up
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fwd_bwd()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - base
            t_f = statistics.median(time_one(fwd, reps))
            t_fb = statistics.median(time_one(fwd_bwd, reps))
        except Exception as exc:  # noqa: BLE001  (reported, not hidden)
            print(f'{shape} {layout} {name}: FAILED {exc!r}', flush=True)
            report.append(dict(shape=shape, layout=layout, backend=name,
                               error=repr(exc)))
            continue
        finally:
            torch.cuda.empty_cache()
        rows[name] = (t_f, t_fb, peak)
    tv = rows.get('torchvision')
    un = rows.get('unfold (no offsets)')
    for name, (t_f, t_fb, peak) in rows.items():
        rec = dict(shape=shape, layout=layout, backend=name, fwd_ms=t_f,
                   fwd_bwd_ms=t_fb, peak_bytes=peak,
                   lower_bound_fwd_bytes=lb_fwd,
                   lower_bound_fwd_bwd_bytes=lb_all)
        if tv:
            rec['fwd_bwd_speedup_vs_torchvision'] = tv[1] / t_fb
            rec['fwd_speedup_vs_torchvision'] = tv[0] / t_f
        if un:
            rec['fwd_bwd_x_unfold'] = t_fb / un[1]
        report.append(rec)
        print(f'| {shape} | {layout} | {name} | {t_f:.3f} | {t_fb:.3f} | '
              f'{rec.get("fwd_bwd_speedup_vs_torchvision", float("nan")):.2f}'
              f' | {rec.get("fwd_bwd_x_unfold", float("nan")):.2f} | '
              f'{peak / 2**20:.0f} MiB |', flush=True)
    print(f'| {shape} | {layout} | bytes-moved lower bound | '
          f'{lb_fwd / 2**20:.0f} MiB | {lb_all / 2**20:.0f} MiB | | | |',
          flush=True)


# (CL_BLOCK_P, CL_BLOCK_C, CL_NUM_WARPS) of the channels-last kernels and
# (TILE_ELEMS, MAX_BLOCK_P, NUM_WARPS) of the tiled ones
TUNE_CL = ((32, 64, 4), (16, 64, 4), (64, 64, 8), (32, 128, 8), (16, 128, 4),
           (64, 32, 4))
TUNE_TILED = ((1024, 256, 4), (512, 128, 4), (1024, 256, 8), (2048, 256, 8))


def tune(tri, shape, layout, reps, report):
    """fwd+bwd time of the Triton backend per launch shape."""
    tensors, groups = make_inputs(shape, layout, torch.float32)
    leaves = [t for t in tensors if t is not None]
    cl = 'off1' in layout
    names = (('CL_BLOCK_P', 'CL_BLOCK_C', 'CL_NUM_WARPS') if cl else
             ('TILE_ELEMS', 'MAX_BLOCK_P', 'NUM_WARPS'))
    default = tuple(getattr(tri, n) for n in names)
    for combo in (TUNE_CL if cl else TUNE_TILED):
        for n, v in zip(names, combo):
            setattr(tri, n, v)

        def fwd():
            return tri.triton_cmdyconv(*tensors, groups)

        def fwd_bwd():
            out = fwd()
            return torch.autograd.grad(out, leaves, torch.ones_like(out))

        try:
            fwd_bwd()
            t_f = statistics.median(time_one(fwd, reps))
            t_fb = statistics.median(time_one(fwd_bwd, reps))
        except Exception as exc:  # noqa: BLE001  (reported)
            print(f'tune {layout} {combo}: FAILED {exc!r}', flush=True)
            continue
        print(f'tune {shape} {layout} {names} = {combo}: fwd {t_f:.3f} ms, '
              f'fwd+bwd {t_fb:.3f} ms', flush=True)
        report.append(dict(shape=shape, layout=layout, tune=dict(
            zip(names, combo)), fwd_ms=t_f, fwd_bwd_ms=t_fb))
    for n, v in zip(names, default):
        setattr(tri, n, v)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shapes', nargs='+', default=['paper'],
                        choices=sorted(SHAPES))
    parser.add_argument('--layouts', nargs='+', default=list(LAYOUTS),
                        choices=LAYOUTS)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--skip-check', action='store_true')
    parser.add_argument('--no-torch', action='store_true',
                        help='do not time the library\'s torch backend')
    parser.add_argument('--json', default=None)
    parser.add_argument(
        '--tune', nargs='*', default=None, metavar='LAYOUT',
        choices=LAYOUTS,
        help='also time the Triton launch shapes in TUNE at the first '
        'shape for these layouts')
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit(f'{PROG}: error: needs a CUDA device '
                         '(torch.cuda.is_available() is False)')
    import torchvision
    import triton
    tri, tch = _load('cmdyconv_triton'), _load('cmdyconv_torch')
    ops = backends(tri, tch)
    report = []
    print(f'device {torch.cuda.get_device_name()}, torch {torch.__version__}'
          f', triton {triton.__version__}, torchvision '
          f'{torchvision.__version__}', flush=True)
    ok = True
    if not args.skip_check:
        ok &= check(ops, (2, 16, 4, 9), torch.float64, report)
        ok &= check(ops, (2, 16, 4, 9), torch.float32, report)
    print('| shape (B, C, G, H=W) | layout | backend | fwd ms | fwd+bwd ms |'
          ' fwd+bwd speed-up vs torchvision | fwd+bwd x unfold | peak mem |'
          '\n|---|---|---|---|---|---|---|---|', flush=True)
    names = [n for n in ops if not (args.no_torch and n == 'torch')]
    for shape_name in args.shapes:
        for layout in args.layouts:
            lnames = [n for n in names
                      if n != 'triton-tiled' or 'off1' in layout]
            bench(ops, lnames, SHAPES[shape_name], layout, args.repeats,
                  report)
    if args.tune:
        for layout in args.tune:
            tune(tri, SHAPES[args.shapes[0]], layout, args.repeats, report)
    if args.json:
        # cmdyseg.fileio.atomic from its file (standard library only)
        with _CPU.load_atomic().atomic_write(args.json, 'w') as f:
            json.dump(dict(device=torch.cuda.get_device_name(),
                           torch=torch.__version__,
                           triton=triton.__version__, check_ok=ok,
                           results=report), f, indent=1)
    if not ok:
        sys.exit(1)


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        print(f'{PROG}: interrupted', file=sys.stderr)
        sys.exit(130)
