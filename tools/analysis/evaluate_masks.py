# Copyright (c) cmdyseg contributors. All rights reserved.
"""Score predicted masks, or a trivial baseline, on an A2D-format test set.

    python tools/analysis/evaluate_masks.py CONFIG --pred PRED [--by-cue]
        [--by-pair] [--coverage]

PRED is one of
  empty       an empty mask for every sample,
  union       the union of all annotated actors of the frame (knows every
              actor, not which one the sentence means),
  gt@HxW      the ground truth seen through a response map of H x W: the
              referred mask area-averaged to H x W, resized back
              bilinearly and thresholded at half its maximum (the heads'
              rule) -- the best a model whose response has that size can
              do (e.g. gt@16x16 for the tiny model's 64 x 64 input / 4),
  FILE.json   predictions dumped by ``tools/test.py CONFIG CKPT --dump
              FILE.json`` (RLE masks).
The ground truth comes from the config's test dataset (A2DSentencesDataset)
at the original frame size and the numbers from ``ReferSegMetric``, so they
compare directly with tools/test.py. ``--by-cue`` also scores each
disambiguation cue of the synthetic data ('none' / 'position' / 'motion',
from ``synthetic_meta.json``) separately, and ``--by-pair`` each pair of
actions that tells a motion scene's look-alikes apart ('motion: bouncing
/ moving_up', ...: a pair a model cannot read shows as a group near the
look-alike union). ``--coverage`` also counts, per group, the samples
whose mask covers at least half of the referred actor and those whose
mask covers at least half of the referred actor and of another annotated
actor of the frame (a model that segments a look-alike too instead of
only the one the sentence means; samples with a single actor are left
out of the second count).
"""
import argparse
import json
import os.path as osp
import re

import numpy as np
from mmengine.registry import init_default_scope
from pycocotools import mask as mask_utils

from cmdyseg.datasets.file_io import load_a2d_instance_mask, read_a2d_masks
from cmdyseg.evaluation.metrics import ReferSegMetric
from cmdyseg.registry import DATASETS
from cmdyseg.utils.cli import DEBUG_HELP, load_config, run_cli
from cmdyseg.utils.config_check import apply_cfg_options
from cmdyseg.utils.errors import (InputNotFoundError, InvalidInputError,
                                  UserInputError)
from cmdyseg.utils.runtime import CfgOptionsAction

# a sample is (video, annotated frame, instance, sentence): an instance
# has several sentences
KEY_FIELDS = ('video_id', 'frame_id', 'instance_id', 'sentence')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], epilog=DEBUG_HELP)
    parser.add_argument('config')
    parser.add_argument(
        '--pred', required=True,
        help="'empty', 'union', 'gt@HxW' or a predictions .json from "
        'tools/test.py')
    parser.add_argument(
        '--by-cue', action='store_true',
        help='also score each cue of the synthetic data separately')
    parser.add_argument(
        '--by-pair', action='store_true',
        help="also score the motion scenes by the pair of actions that "
        "tells their look-alikes apart ('motion: A / B')")
    parser.add_argument(
        '--coverage', action='store_true',
        help='also count the masks that cover the referred actor and those '
        'that cover another actor too (see above)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        metavar='KEY=VALUE', help='override config entries')
    parser.add_argument('--out', help='write the metrics here as JSON')
    return parser.parse_args(argv)


def _key(info):
    return tuple(str(info[k]) for k in KEY_FIELDS)


_GT_AT = re.compile(r'^gt@(\d+)x(\d+)$')


def gt_through_response(gt: np.ndarray, size) -> np.ndarray:
    """``gt`` (H, W) 0/1 seen through a response map of ``size`` (h, w):
    area average to ``size``, bilinear back to (H, W), half of the
    maximum (see the module doc)."""
    import torch
    import torch.nn.functional as F
    t = torch.from_numpy(gt.astype(np.float32))[None, None]
    small = F.interpolate(t, size=size, mode='area')
    up = F.interpolate(small, size=gt.shape, mode='bilinear',
                       align_corners=False)[0, 0]
    if up.max() <= 0:
        return np.zeros_like(gt)
    return (up > 0.5 * up.max()).numpy().astype(np.uint8)


def coverage(mask: np.ndarray, info) -> tuple:
    """``(covers the referred actor, covers it and another actor, or None
    without another actor)``: 'covers' = at least half of the actor's
    pixels are in ``mask``; an actor without pixels in the frame is not
    another actor."""
    ids, masks = read_a2d_masks(info['mask_path'])
    referred_id = int(info['instance_id'])
    covered = {
        int(i): (np.logical_and(mask, m > 0).sum() * 2 >= (m > 0).sum())
        for i, m in zip(ids, masks[:len(ids)])
        if int(i) == referred_id or (m > 0).any()
    }
    referred = covered.pop(referred_id)
    if not covered:
        return bool(referred), None
    return bool(referred), bool(referred and any(covered.values()))


def union_of_actors(info) -> np.ndarray:
    """All annotated instances of the sample's frame, OR-ed (one read of
    the frame's mask file; extra masks without an instance id, a glitch of
    the real files, are left out)."""
    ids, masks = read_a2d_masks(info['mask_path'])
    return (masks[:len(ids)] > 0).any(axis=0).astype(np.uint8)


class MissingPredictionError(UserInputError, KeyError):
    """The predictions file has no entry for a sample of the dataset."""


def load_predictions(path):
    if not osp.isfile(path):
        raise InputNotFoundError(f'--pred {path}: file not found')
    with open(path, encoding='utf-8') as f:
        try:
            entries = json.load(f)
        except ValueError as e:  # JSONDecodeError, bad UTF-8
            raise InvalidInputError(f'--pred {path}: not a JSON file '
                                    f'({e})') from e
    if not isinstance(entries, list):
        raise InvalidInputError(f'--pred {path}: not a tools/test.py --dump '
                                'file (expected a JSON list)')
    preds = {}
    for i, entry in enumerate(entries):
        try:
            rle = dict(entry['segmentation'])
            key = _key(entry)
        except (KeyError, TypeError) as e:
            raise InvalidInputError(f'{path}: entry {i} is not a '
                                    f'tools/test.py --dump prediction '
                                    f'({e})') from e
        rle['counts'] = rle['counts'].encode('ascii')
        preds[key] = mask_utils.decode(rle)
    return preds


def evaluate(cfg, pred, by_cue=False, with_coverage=False, by_pair=False):
    """Return {group: metrics}; group 'all' plus one per cue, and with
    ``by_pair`` one per pair of actions of the motion scenes (``'motion:
    A / B'``, see :func:`cmdyseg.synthetic.motion_pairs`); with
    ``with_coverage`` each group also has ``coverage``: the percentage of
    its samples whose mask covers the referred actor (``referred``) and
    of those with other actors whose mask covers one of them too
    (``another``)."""
    init_default_scope(cfg.get('default_scope', 'cmdyseg'))
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.pipeline = []
    dataset = DATASETS.build(ds_cfg)
    cues, pairs = {}, {}
    if by_cue or by_pair:
        from cmdyseg.synthetic import (instance_cues, load_synthetic_meta,
                                       motion_pairs)
        meta = load_synthetic_meta(dataset.data_root)
        cues = instance_cues(meta) if by_cue else {}
        pairs = motion_pairs(meta) if by_pair else {}
    predictions = gt_size = None
    if _GT_AT.match(pred):
        gt_size = tuple(int(n) for n in _GT_AT.match(pred).groups())
        if min(gt_size) < 1:
            raise InvalidInputError(f'--pred {pred}: the size must be '
                                    'positive')
    elif pred not in ('empty', 'union'):
        predictions = load_predictions(pred)

    metrics = {}
    covers = {}  # group -> [(referred, another or None)]

    def metric_for(group):
        if group not in metrics:
            metrics[group] = ReferSegMetric(
                prefix=group, breakdown=False, coco_ap=group == 'all')
            metrics[group].dataset_meta = dataset.metainfo
        return metrics[group]

    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        gt = load_a2d_instance_mask(info['mask_path'],
                                    list(info['mask_indices']),
                                    int(info['instance_id']))
        if pred == 'empty':
            mask = np.zeros_like(gt)
        elif pred == 'union':
            mask = union_of_actors(info)
        elif gt_size is not None:
            mask = gt_through_response(gt, gt_size)
        else:
            if _key(info) not in predictions:
                raise MissingPredictionError(
                    f'{pred} has no prediction for sample '
                    f'{dict(zip(KEY_FIELDS, _key(info)))}')
            mask = predictions[_key(info)]
        sample = dict(
            pred_mask=mask[None], ori_gt_mask=gt[None],
            metainfo={k: info[k] for k in KEY_FIELDS})
        groups = ['all']
        instance = (info['video_id'], int(info['instance_id']))
        if by_cue:
            groups.append(cues[instance])
        if instance in pairs:
            groups.append(f'motion: {pairs[instance]}')
        cov = coverage(mask, info) if with_coverage else None
        for group in groups:
            metric_for(group).process(None, [sample])
            if cov is not None:
                covers.setdefault(group, []).append(cov)
    results = {}
    for group, metric in sorted(metrics.items()):
        num = len(metric.results)
        results[group] = dict(metric.evaluate(num), num_samples=num)
        if with_coverage:
            ref = [r for r, _ in covers[group]]
            others = [o for _, o in covers[group] if o is not None]
            results[group]['coverage'] = dict(
                referred=100. * np.mean(ref),
                another=100. * np.mean(others) if others else None,
                samples_with_others=len(others))
    return results


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    apply_cfg_options(cfg, args.cfg_options, args.config)
    results = evaluate(cfg, args.pred, args.by_cue, args.coverage,
                       args.by_pair)
    keys = ('mAP', 'P@0.5', 'P@0.7', 'P@0.9', 'oIoU', 'mIoU')
    print(f'predictions: {args.pred}')
    print('| group | samples | ' + ' | '.join(keys) + ' |')
    print('| --- ' * (len(keys) + 2) + '|')
    for group, res in results.items():
        n = res['num_samples']
        row = [f'{res[f"{group}/{k}"]:.1f}' for k in keys]
        print(f'| {group} | {n} | ' + ' | '.join(row) + ' |')
    if args.coverage:
        print('\nmasks covering (at least half of) the referred actor, and '
              'it and another actor of the frame:')
        print('| group | samples | referred | referred and another '
              '(samples with others) |')
        print('| --- | --- | --- | --- |')
        for group, res in results.items():
            cov = res['coverage']
            other = ('-' if cov['another'] is None else
                     f"{cov['another']:.1f}")
            print(f"| {group} | {res['num_samples']} | "
                  f"{cov['referred']:.1f} | {other} "
                  f"({cov['samples_with_others']}) |")
    if args.out:
        from cmdyseg.evaluation.metrics.refer_seg_metric import \
            dump_json_atomic
        dump_json_atomic(results, args.out)
    return results


if __name__ == '__main__':
    run_cli(main, prog='evaluate_masks.py')
