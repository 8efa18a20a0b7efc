# Copyright (c) cmdyseg contributors. All rights reserved.
"""Segment what sentences refer to in every frame of a video.

    python demo/inference.py VIDEO "SENTENCE" [--sentence "ANOTHER" ...] \
        --config CONFIG --checkpoint CHECKPOINT [--device cpu] \
        [--out DIR] [--batch-size N] [--window-stride K] \
        [--interpolate {features,responses,deep}] [--fps FPS] \
        [--overwrite] [--no-gif] [--no-progress]

``--window-stride K`` (K > 1) is the fast mode: the video encoder runs on
the clips of every K-th frame only and the frames in between get
interpolated video features (cmdyseg.apis.segment_frames); with
``--interpolate responses`` the head too runs on those frames only and the
frames in between get interpolated response maps (faster when the head is
costly: several sentences, the paper-size heads); with ``--interpolate
deep`` (the tiny config) only the deep features are interpolated and each
frame keeps its own early maps (closer to the exact mode). The default 1
segments
every frame from its own clip, exactly as the model was trained.

VIDEO is a video file or a folder of frames (image files, natural order).
DIR (default ``demo_outputs/<video name>``) receives

- ``overlay.mp4``: every frame with each sentence's mask in its colour,
  the sentences (and per-frame scores) listed in the same colours in a
  black band below the frame, so that the whole frame stays visible
  (OpenCV ``mp4v``; the frame size plus the band,
  ``outputs.overlay_size`` in ``summary.json``);
- ``overlay.gif``: the same, at most 320 px wide and 300 frames (frames
  are skipped evenly on longer videos), written with Pillow; not with
  ``--no-gif`` (the GIF is the slow part on long videos);
- ``masks/<sentence index>/<frame:05d>.png``: the binary masks (0 / 255),
  sentence index and frame index 0-based;
- ``summary.json``: the sentences, frame count, size, fps, per-frame mask
  area (pixels) and score (mean probability inside the mask), and the
  paths of the other outputs (relative to DIR).

Everything is written into a temporary folder next to DIR and renamed to
DIR at the end, so DIR is complete or absent; an existing non-empty DIR is
replaced only with ``--overwrite``. Bad input (a missing or unreadable
video, an empty sentence, a sentence without a known word, an unusable
checkpoint) ends the program with status 1 and one line
``inference.py: error: ...`` naming it; ``--debug`` (or
``CMDYSEG_DEBUG=1``) shows the traceback instead.
From ``PROGRESS_MIN_FRAMES`` frames on (unless ``--no-progress``), the
segmentation and the writing of each output show progress bars.
"""
import argparse
import functools
import json
import os
import os.path as osp
import shutil
import sys
import tempfile

import cv2
import numpy as np

from cmdyseg import fileio
from cmdyseg.apis import (VideoReadError, VideoSource, check_sentences,
                          inference_model, init_model)
from cmdyseg.fileio import replace_dir
from cmdyseg.utils.cli import DEBUG_HELP, run_cli
from cmdyseg.utils.errors import UserInputError
from cmdyseg.visualization import (caption_band_height, draw_refer_overlay,
                                   imwrite_atomic)

GIF_MAX_WIDTH = 320
GIF_MAX_FRAMES = 300
#: Show progress bars from this many frames on.
PROGRESS_MIN_FRAMES = 50
#: Where the sentences go (see ``draw_refer_overlay``): a band below the
#: frame, which over a small frame would hide a large part of it.
CAPTION = 'below'


class DemoError(UserInputError):
    """Bad input: reported as one line on stderr, exit status 1."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Referring video segmentation demo (cmdyseg)',
        epilog=DEBUG_HELP)
    parser.add_argument('video', help='video file or folder of frames')
    parser.add_argument('sentence', help='referring expression')
    parser.add_argument(
        '--sentence',
        dest='more_sentences',
        action='append',
        default=[],
        metavar='SENTENCE',
        help='another referring expression (repeatable)')
    parser.add_argument(
        '--config', help='model config file (not with --onnx)')
    parser.add_argument(
        '--checkpoint', help='checkpoint path or URL (not with --onnx)')
    parser.add_argument(
        '--onnx', metavar='MODEL.onnx',
        help='run a model exported by tools/deployment/export_onnx.py '
        'with onnxruntime (its MODEL.onnx.json beside it) instead of '
        '--config / --checkpoint')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--out', help='output folder (default: demo_outputs/<video name>)')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=4,
        help='clip windows per video-encoder call (default 4)')
    parser.add_argument(
        '--window-stride',
        type=int,
        default=1,
        help='1 (default): every frame from its own clip; K > 1: fast '
        'mode, the video encoder runs on every K-th frame\'s clip')
    parser.add_argument(
        '--interpolate',
        choices=('features', 'responses', 'deep'),
        default='features',
        help='what the fast mode interpolates between the encoded frames: '
        'their video features (default; the head runs on every frame), '
        'their response maps (the head runs on the encoded frames only) or '
        'their deep features only (each frame keeps its own early maps; '
        'models with skip_reduce=centre)')
    parser.add_argument(
        '--fps',
        type=float,
        help='frame rate of the outputs (default: the video file\'s, 25 '
        'for a folder of frames)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace a non-empty output folder')
    parser.add_argument(
        '--no-gif', action='store_true',
        help='do not write overlay.gif (the slow output on long videos)')
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bars')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.window_stride < 1:
        parser.error(
            f'--window-stride must be >= 1, got {args.window_stride}')
    if args.fps is not None and not args.fps > 0:
        parser.error(f'--fps must be positive, got {args.fps}')
    return args


def default_out_dir(video: str) -> str:
    stem = osp.splitext(osp.basename(osp.normpath(video)))[0] or 'video'
    return osp.join('demo_outputs', stem)


def check_out_dir(out: str, overwrite: bool) -> str:
    try:
        return fileio.check_out_dir(out, overwrite, '--overwrite')
    except FileExistsError as e:
        raise DemoError(f'--out {e}') from None


def progress_bar(num: int, what: str):
    """An mmengine progress bar over ``num`` items, after a line saying
    what is being done."""
    from mmengine.utils import ProgressBar
    print(f'{what} ({num} frames)', flush=True)
    # sys.stdout of now (ProgressBar's default is the one of its import)
    return ProgressBar(num, file=sys.stdout)


def end_progress(bar) -> None:
    """End a bar's line (mmengine's leaves the cursor on it)."""
    if bar is not None:
        bar.file.write('\n')
        bar.file.flush()


def write_video(path: str, frames, fps: float, size) -> None:
    """Write RGB frames as an mp4v video of ``size`` (W, H)."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'),
                             float(fps), tuple(size))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot open an mp4v VideoWriter for '
                           f'{path} (is FFmpeg support built in?)')
    try:
        for t, frame in enumerate(frames):
            # OpenCV drops a frame of another size without a word
            if frame.shape[:2] != (size[1], size[0]):
                raise ValueError(f'frame {t} for {path} is {frame.shape[1]} '
                                 f'x {frame.shape[0]}, the video {size[0]} '
                                 f'x {size[1]}')
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def write_gif(path: str, frames, duration_ms: float,
              progress: bool = False) -> None:
    """Write RGB frames as a looping GIF with Pillow (a progress bar over
    the frames with ``progress``: Pillow converts them one by one)."""
    from PIL import Image
    if not frames:
        raise ValueError('no frame to write to the GIF')
    bar = progress_bar(len(frames), f'writing {osp.basename(path)}') \
        if progress else None

    def images():
        for frame in frames:
            if bar is not None:
                bar.update()
            yield Image.fromarray(frame)

    rest = images()
    first = next(rest)
    try:
        first.save(
            path,
            save_all=True,
            append_images=rest,
            duration=max(20, int(round(duration_ms))),
            loop=0,
            optimize=False)
    finally:
        end_progress(bar)


def gif_frame(frame: np.ndarray) -> np.ndarray:
    H, W = frame.shape[:2]
    if W <= GIF_MAX_WIDTH:
        return frame
    h = max(1, int(round(H * GIF_MAX_WIDTH / W)))
    return cv2.resize(frame, (GIF_MAX_WIDTH, h), interpolation=cv2.INTER_AREA)


def write_outputs(tmp: str, source: VideoSource, results, fps: float,
                  progress: bool, gif: bool = True) -> dict:
    """Write every output into ``tmp`` (the GIF only with ``gif``); return
    the summary's outputs."""
    num_frames = results[0]['masks'].shape[0]
    H, W = source.frame_shape
    sentences = [r['sentence'] for r in results]
    band = caption_band_height(W, sentences) if CAPTION != 'over' else 0
    mask_dirs = []
    for s in range(len(results)):
        mask_dirs.append(osp.join('masks', str(s)))
        os.makedirs(osp.join(tmp, mask_dirs[-1]))
    gif_step = max(1, int(np.ceil(num_frames / GIF_MAX_FRAMES)))
    gif_frames = []
    bar = progress_bar(num_frames, 'writing overlay.mp4 and masks/') \
        if progress else None

    def overlays():
        t = -1
        for t, frame in enumerate(source):
            if t >= num_frames:
                raise RuntimeError(f'{source.name} decoded to more frames '
                                   f'the second time than the first '
                                   f'({num_frames})')
            for s, result in enumerate(results):
                imwrite_atomic(
                    osp.join(tmp, mask_dirs[s], f'{t:05d}.png'),
                    result['masks'][t] * np.uint8(255))
            drawn = draw_refer_overlay(
                frame, [r['masks'][t] for r in results],
                sentences,
                scores=[r['scores'][t] for r in results],
                caption=CAPTION)
            if gif and t % gif_step == 0:
                gif_frames.append(gif_frame(drawn))
            if bar is not None:
                bar.update()
            yield drawn
        if t + 1 != num_frames:
            raise RuntimeError(f'{source.name} decoded to {t + 1} frames the '
                               f'second time, {num_frames} the first')

    try:
        write_video(
            osp.join(tmp, 'overlay.mp4'), overlays(), fps, (W, H + band))
    finally:
        end_progress(bar)
    if gif:
        write_gif(
            osp.join(tmp, 'overlay.gif'), gif_frames,
            1000.0 * gif_step / fps, progress=progress)
    return dict(
        overlay_video='overlay.mp4',
        overlay_size=[int(W), int(H + band)],
        caption_band=CAPTION if band else None,
        gif='overlay.gif' if gif else None,
        gif_frame_step=gif_step if gif else None,
        masks=mask_dirs,
        summary='summary.json')


def publish(tmp: str, out: str) -> None:
    """Move the finished ``tmp`` folder to ``out`` (replacing it)."""
    replace_dir(tmp, out, overwrite=True)


def run(args) -> str:
    sentences = [args.sentence] + list(args.more_sentences)
    try:
        check_sentences(sentences)
    except ValueError as e:
        raise DemoError(str(e)) from e
    out = check_out_dir(args.out or default_out_dir(args.video),
                        args.overwrite)
    try:
        source = VideoSource(args.video, fps=args.fps)
    except (FileNotFoundError, VideoReadError) as e:
        raise DemoError(str(e)) from e
    if args.onnx:
        if args.config or args.checkpoint:
            raise DemoError('--onnx runs the exported model: give it without '
                            '--config / --checkpoint')
        if args.window_stride != 1:
            raise DemoError(
                '--window-stride > 1 needs the PyTorch model (the exported '
                'graph keeps the video features inside)')
        from cmdyseg.deployment import OnnxSegmentor

        # missing, foreign or mismatched files: one-line UserInputErrors
        model = OnnxSegmentor(args.onnx)
        segment = model.inference
    else:
        if not args.config or not args.checkpoint:
            raise DemoError('give --config and --checkpoint, or --onnx '
                            'MODEL.onnx')
        if not osp.isfile(args.config):
            raise DemoError(f'config file not found: {args.config}')
        # a missing, corrupt, unsafe or foreign checkpoint: CheckpointError
        model = init_model(args.config, args.checkpoint, device=args.device)
        segment = functools.partial(
            inference_model, model, interpolate=args.interpolate)
    try:
        check_sentences(sentences, model.text_encoder)
    except ValueError as e:
        raise DemoError(str(e)) from e

    progress = False
    if not args.no_progress:
        count = source.frame_count_hint
        progress = count is None or count >= PROGRESS_MIN_FRAMES
    results = segment(
        source, sentences, batch_size=args.batch_size,
        progress=progress, window_stride=args.window_stride)

    parent = osp.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.tmp-', dir=parent)
    try:
        outputs = write_outputs(tmp, source, results, source.fps, progress,
                                gif=not args.no_gif)
        H, W = source.frame_shape
        summary = dict(
            video=osp.abspath(args.video) if isinstance(
                args.video, str) else str(args.video),
            config=args.config,
            checkpoint=args.checkpoint,
            onnx=args.onnx,
            sentences=sentences,
            num_frames=int(results[0]['masks'].shape[0]),
            height=int(H),
            width=int(W),
            fps=float(source.fps),
            clip_len=int(model.clip_len if args.onnx else _clip_len(model)),
            frame_index_base=0,
            per_sentence=[
                dict(
                    sentence=r['sentence'],
                    mask_dir=outputs['masks'][s],
                    area=[int(a) for a in r['masks'].sum(axis=(1, 2))],
                    score=[round(float(x), 6) for x in r['scores']])
                for s, r in enumerate(results)
            ],
            outputs=outputs)
        with open(osp.join(tmp, 'summary.json'), 'w', encoding='utf-8') as f:
            json.dump(summary, f, indent=2)
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _clip_len(model) -> int:
    from cmdyseg.apis import VideoPreprocessor
    return VideoPreprocessor(model.cfg).clip_len


def _main(argv) -> int:
    args = parse_args(argv)
    out = run(args)
    print(f'wrote {out}')
    return 0


def main(argv=None) -> int:
    """Run the demo and return its exit status: bad input (any
    ``UserInputError``: DemoError, CheckpointError, VideoReadError...) is
    one line on stderr and status 1 (:func:`cmdyseg.utils.cli.run_cli`)."""
    return run_cli(_main, argv, prog='inference.py', exit=False)


if __name__ == '__main__':
    sys.exit(main())
