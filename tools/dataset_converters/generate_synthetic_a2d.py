# Copyright (c) cmdyseg contributors. All rights reserved.
"""Generate the synthetic referring-segmentation dataset (A2D layout).

Coloured shapes that move, bounce, rotate or stand still, with sentences
that name colour, shape, motion and position; written exactly as A2D
Sentences is distributed, so ``A2DSentencesDataset`` reads it (see
:mod:`cmdyseg.synthetic` and
``configs/_base_/datasets/synthetic_a2d.py``).

The defaults (480 train + 50 test videos of 32 frames, 96 x 128 px, 3-5
annotated frames each, 2 sentences per actor) give ~8.6k training and ~0.9k
test samples, a third of the videos in each kind of scene (``none`` /
``position`` / ``motion`` cue): enough to learn the colour, shape, position
and motion words without memorising the videos (with 150 training videos
the tiny model scored mIoU 67 on them and 44 on the test videos), and
small enough to generate in under half a minute. The test scenes (frames,
masks, sentences) depend on the seed only, not on ``--num-train``; their
video ids depend on both.

Example::

    python tools/dataset_converters/generate_synthetic_a2d.py \\
        data/synthetic_a2d --seed 0

``--layout ytvos`` writes the same scenes in the Ref-YouTube-VOS layout
instead (``train/`` = the training scenes, ``valid/`` = the test scenes,
every frame masked; see :mod:`cmdyseg.synthetic.ytvos_writer`), read by
``RefYouTubeVOSDataset`` for the video-level test and J&F::

    python tools/dataset_converters/generate_synthetic_a2d.py \
        data/synthetic_ytvos --layout ytvos --num-train 0

The same arguments give byte-identical files (with the same OpenCV/FFmpeg
and HDF5 builds). The dataset is written beside ``OUT_DIR`` and renamed into
place at the end; a non-empty ``OUT_DIR`` is only replaced with
``--overwrite``.
"""
import argparse
import sys
import time

from cmdyseg.synthetic import (format_stats, generate_synthetic_a2d,
                               generate_synthetic_ytvos)
from cmdyseg.utils.cli import DEBUG_HELP, run_cli


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the synthetic A2D-layout dataset',
        epilog=DEBUG_HELP)
    parser.add_argument('out_dir', help='data root to create, e.g. '
                        'data/synthetic_a2d')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--num-train', type=int, default=480, help='training videos')
    parser.add_argument(
        '--num-test', type=int, default=50, help='test videos')
    parser.add_argument(
        '--num-missed',
        type=int,
        default=2,
        help='extra videos listed in a2d_missed_videos.txt (no masks)')
    parser.add_argument(
        '--frames', type=int, default=32, help='frames per video (>= 8)')
    parser.add_argument(
        '--height', type=int, default=96, help='frame height (even, >= 32)')
    parser.add_argument(
        '--width', type=int, default=128, help='frame width (even, >= 32)')
    parser.add_argument(
        '--layout', choices=('a2d', 'ytvos'), default='a2d',
        help='A2D Sentences (default) or Ref-YouTube-VOS file layout')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace OUT_DIR if it exists and is not empty')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        generate = generate_synthetic_a2d if args.layout == 'a2d' else \
            generate_synthetic_ytvos
        meta = generate(
            args.out_dir,
            seed=args.seed,
            num_train=args.num_train,
            num_test=args.num_test,
            num_frames=args.frames,
            height=args.height,
            width=args.width,
            num_missed=args.num_missed,
            overwrite=args.overwrite)
    except (FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if args.layout == 'a2d':
        print(format_stats(meta))
    else:
        print('Ref-YouTube-VOS layout: ' + ', '.join(
            f'{split} {len(vids)} videos'
            for split, vids in meta['videos'].items()) +
            f", {len(meta['cues'])} expressions")
    print(f'written to {args.out_dir} in '
          f'{time.perf_counter() - start:.1f} s')
    return 0


if __name__ == '__main__':
    run_cli(main, prog='generate_synthetic_a2d.py')
