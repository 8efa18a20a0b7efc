# Copyright (c) cmdyseg contributors. All rights reserved.
"""Extract the frames of A2D's ``Release/clips320H/<vid>.mp4`` videos.

Writes ``<out_dir>/<vid>/<frame:05d>.jpg`` with 1-based frame numbers (frame
``n`` of the video is the frame the mask file ``<frame:05d>.h5`` annotates),
which :class:`cmdyseg.datasets.A2DSentencesDataset` reads with
``frame_dir=<out_dir>`` and mmaction2's ``RawFrameDecode``.

Each video is written atomically: its frames go into a temporary folder
beside the target, which is renamed to ``<vid>`` only when every frame is
written; an interrupted run leaves no half-filled ``<vid>`` folder, and
videos already extracted are skipped unless ``--overwrite``.

Example::

    python tools/dataset_converters/a2d_extract_frames.py \\
        data/a2d_sentences/Release/clips320H \\
        data/a2d_sentences/Release/frames320H --num-workers 8
"""
import argparse
import os
import os.path as osp
import sys
from multiprocessing import Pool
from typing import List, Optional, Tuple

import cv2

from cmdyseg.fileio import atomic_dir
from cmdyseg.utils.cli import DEBUG_HELP, run_cli
from cmdyseg.utils.errors import InputNotFoundError


def extract_video(video_path: str,
                  out_dir: str,
                  quality: int = 95,
                  overwrite: bool = False) -> Tuple[str, int]:
    """Extract one video into ``out_dir/<vid>/``.

    Args:
        video_path (str): ``<vid>.mp4``.
        out_dir (str): Root of the frame folders.
        quality (int): JPEG quality (0-100). Defaults to 95.
        overwrite (bool): Replace an existing ``<vid>`` folder.

    Returns:
        tuple[str, int]: video id and number of frames written (0 when it
        was skipped because it exists).

    Raises:
        RuntimeError: the video is missing, does not open or has no frame.
    """
    vid = osp.splitext(osp.basename(video_path))[0]
    target = osp.join(out_dir, vid)
    if osp.isdir(target) and not overwrite:
        return vid, 0
    if not osp.isfile(video_path):
        raise RuntimeError(f'{video_path}: video file does not exist')
    cap = cv2.VideoCapture(video_path)
    if not cap.isOpened():
        raise RuntimeError(f'{video_path}: OpenCV cannot open the video')
    try:
        # an existing target is only reached with overwrite (see above)
        with atomic_dir(target, overwrite=True) as tmp:
            num = 0
            while True:
                ok, frame = cap.read()  # BGR, as cv2.imwrite expects
                if not ok:
                    break
                num += 1
                path = osp.join(tmp, f'{num:05d}.jpg')
                if not cv2.imwrite(path, frame,
                                   [cv2.IMWRITE_JPEG_QUALITY, quality]):
                    raise RuntimeError(f'cannot write {path}')
            if num == 0:
                raise RuntimeError(f'{video_path}: no frame decodes')
    finally:
        cap.release()
    return vid, num


def _extract_star(args):
    return extract_video(*args)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extract A2D videos into 1-based JPEG frame folders',
        epilog=DEBUG_HELP)
    parser.add_argument('video_dir', help='folder of <vid>.mp4 files '
                        '(Release/clips320H)')
    parser.add_argument('out_dir', help='output root: <out_dir>/<vid>/'
                        '<frame:05d>.jpg')
    parser.add_argument(
        '--videos', nargs='+', help='only these video ids (default: all)')
    parser.add_argument('--quality', type=int, default=95, help='JPEG '
                        'quality')
    parser.add_argument('--num-workers', type=int, default=1)
    parser.add_argument('--overwrite', action='store_true',
                        help='re-extract videos whose folder exists')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if not osp.isdir(args.video_dir):
        raise InputNotFoundError(
            f'video folder not found: {args.video_dir}')
    if args.videos:
        names = [v + '.mp4' for v in args.videos]
    else:
        names = sorted(n for n in os.listdir(args.video_dir)
                       if n.endswith('.mp4'))
    jobs = [(osp.join(args.video_dir, n), args.out_dir, args.quality,
             args.overwrite) for n in names]
    failed = 0
    if args.num_workers > 1:
        with Pool(args.num_workers) as pool:
            results = pool.imap_unordered(_safe_extract, jobs)
            failed = sum(_report(r) for r in results)
    else:
        failed = sum(_report(_safe_extract(j)) for j in jobs)
    print(f'{len(jobs) - failed} of {len(jobs)} videos done, {failed} '
          'failed')
    return 1 if failed else 0


def _safe_extract(job):
    try:
        return _extract_star(job)
    except RuntimeError as e:
        return e


def _report(result) -> int:
    if isinstance(result, Exception):
        print(f'FAILED {result}', file=sys.stderr)
        return 1
    vid, num = result
    print(f'{vid}: ' + (f'{num} frames' if num else 'exists, skipped'))
    return 0


if __name__ == '__main__':
    run_cli(main, prog='a2d_extract_frames.py')
