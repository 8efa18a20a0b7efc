# Copyright (c) cmdyseg contributors. All rights reserved.
"""Per-frame agreement of video-level predictions with a reference run.

    python tools/analysis/compare_video_dumps.py EXACT.pkl FAST.pkl
        [FAST.pkl ...] [--json OUT]

Each file is a ``tools/test.py --dump`` of a video-level config (the
expression records that ``DumpVideoResults`` writes: ``video_id``,
``exp_id`` and the RLE ``pred_masks`` of every frame). For every other
file the masks of each (video, expression, frame) are compared with the
first file's (for instance the exact mode against the fast mode's
``test_cfg.window_stride``): mask IoU per frame (1 where both masks are
empty), then the mean and median over all frames, and the fraction of
frames with IoU >= 0.9. Both files must hold the same expressions with the
same number of frames.
"""
import argparse
import os.path as osp

import numpy as np

from cmdyseg.evaluation.functional import jaccard
from cmdyseg.utils.cli import DEBUG_HELP, run_cli
from cmdyseg.utils.errors import InputNotFoundError, InvalidInputError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], epilog=DEBUG_HELP)
    parser.add_argument('reference', help='the reference dump (.pkl)')
    parser.add_argument('others', nargs='+', metavar='DUMP',
                        help='dumps compared with the reference')
    parser.add_argument('--json', help='also write the results here')
    return parser.parse_args(argv)


def load_records(path: str) -> dict:
    """``{(video_id, exp_id): pred_masks}`` of one dump."""
    import mmengine
    if not osp.isfile(path):
        raise InputNotFoundError(f'{path}: no such file')
    try:
        records = mmengine.load(path)
    except Exception as e:  # pickle errors are many: name the file
        raise InvalidInputError(
            f'{path}: not a readable dump ({type(e).__name__}: {e})') from e
    if not isinstance(records, list) or not all(
            isinstance(r, dict) and {'video_id', 'exp_id', 'pred_masks'} <=
            set(r) for r in records):
        raise InvalidInputError(
            f'{path}: not a video-level dump (a list of records with '
            'video_id, exp_id and pred_masks: tools/test.py --dump with a '
            'video-level config)')
    return {(r['video_id'], str(r['exp_id'])): r['pred_masks']
            for r in records}


def frame_ious(reference: list, other: list) -> np.ndarray:
    """Mask IoU of each frame of two RLE lists (1 where both are empty)."""
    from pycocotools import mask as mask_utils
    ref = mask_utils.decode(reference).transpose(2, 0, 1)  # (T, H, W)
    oth = mask_utils.decode(other).transpose(2, 0, 1)
    return jaccard(oth, ref)


def compare(reference: dict, other: dict, ref_path: str,
            other_path: str) -> dict:
    if set(reference) != set(other):
        missing = sorted(set(reference) ^ set(other))[:3]
        raise InvalidInputError(
            f'{other_path}: its expressions are not those of {ref_path} '
            f'(e.g. {missing}); compare dumps of the same test set')
    ious = []
    for key in sorted(reference):
        if len(reference[key]) != len(other[key]):
            raise InvalidInputError(
                f'{other_path}: expression {key} has {len(other[key])} '
                f'frames, {len(reference[key])} in {ref_path}')
        ious.append(frame_ious(reference[key], other[key]))
    ious = np.concatenate(ious)
    return dict(
        dump=other_path,
        expressions=len(reference),
        frames=int(ious.size),
        mean_iou=float(ious.mean()),
        median_iou=float(np.median(ious)),
        frames_iou_ge_0_9=float((ious >= 0.9).mean()))


def main(argv=None):
    args = parse_args(argv)
    reference = load_records(args.reference)
    rows = [
        compare(reference, load_records(path), args.reference, path)
        for path in args.others
    ]
    print(f'mask IoU per frame against {args.reference}:')
    print('| dump | expressions | frames | mean | median | frames >= 0.9 |')
    print('| --- | --- | --- | --- | --- | --- |')
    for r in rows:
        print(f"| {r['dump']} | {r['expressions']} | {r['frames']} | "
              f"{r['mean_iou']:.3f} | {r['median_iou']:.3f} | "
              f"{100 * r['frames_iou_ge_0_9']:.1f}% |")
    if args.json:
        import json

        from cmdyseg.fileio.atomic import atomic_write
        with atomic_write(args.json, 'w', encoding='utf-8') as f:
            json.dump(dict(reference=args.reference, runs=rows), f, indent=2)
    return rows


if __name__ == '__main__':
    run_cli(main)
