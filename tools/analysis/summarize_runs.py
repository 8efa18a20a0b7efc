# Copyright (c) cmdyseg contributors. All rights reserved.
"""Mean +- std over runs of tools/main_job.py (seeds), per cue and metric.

    python tools/analysis/summarize_runs.py WORK_DIR [WORK_DIR ...]
        [--label NAME] [--out summary.json]

Each WORK_DIR is one run of ``tools/main_job.py`` (e.g. ``--seed 0/1/2``)
and holds its ``verdicts.json`` (model, union-of-actors and empty-mask
metrics per cue) and, when the run had its video-level step,
``scores_video_level.json``. Printed: a markdown table of the model's
mean +- standard deviation (sample std, ddof = 1; 0 for one run) per cue
and metric beside the union baseline (the same in every run: the test set
is fixed), and per cue the verdict on the means plus in how many runs the
model was above the baseline on every metric.
"""
import argparse
import json
import os.path as osp

import numpy as np

from cmdyseg.utils.cli import DEBUG_HELP, run_cli
from cmdyseg.utils.errors import InputNotFoundError, InvalidInputError

JF_KEYS = ('J', 'F', 'J&F')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], epilog=DEBUG_HELP)
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR')
    parser.add_argument('--label', default='model',
                        help='name of the model in the table')
    parser.add_argument('--out', help='write the summary here as JSON')
    return parser.parse_args(argv)


def _load(work_dir, name, required=True):
    path = osp.join(work_dir, name)
    if not osp.isfile(path):
        if not required:
            return None
        raise InputNotFoundError(
            f'{path}: not found; is {work_dir} a work dir of '
            'tools/main_job.py (run to its end)?')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except ValueError as e:
        raise InvalidInputError(f'{path}: not a JSON file ({e})') from None


def mean_std(values):
    """(mean, sample std) of a list; std 0 for a single value."""
    arr = np.asarray(values, dtype=float)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return float(arr.mean()), std


def summarize(runs, video_runs=None, baseline='union'):
    """Summary of several runs' ``verdicts.json`` (and video-level scores).

    Args:
        runs (list[dict]): each run's verdicts (``tools/main_job.py``'s
            ``cue_verdicts``); the same cues and metrics in every run.
        video_runs (list[dict], optional): each run's
            ``scores_video_level.json`` (runs without it left out).

    Returns:
        dict: ``{'num_runs': n, 'cues': {cue: {'num_samples', 'metrics':
        {metric: {'mean', 'std', 'values', baseline, 'empty'}},
        'below': [metrics whose mean is not above the baseline],
        'verdict': 'above' | 'below', 'runs_above': k}}, 'video_level':
        {cue: {J / F / J&F: {'mean', 'std', 'values'}}} or None}``.
    """
    first = runs[0]
    cues = {}
    for cue, entry in first.items():
        metrics = {}
        for k in entry['metrics']:
            values = []
            for i, run in enumerate(runs):
                try:
                    values.append(run[cue]['metrics'][k]['model'])
                except KeyError:
                    raise InvalidInputError(
                        f'run {i} has no {cue}/{k}: the runs were not '
                        'scored alike') from None
            mean, std = mean_std(values)
            metrics[k] = dict(
                mean=mean, std=std, values=values,
                **{b: entry['metrics'][k][b]
                   for b in entry['metrics'][k] if b != 'model'})
        below = [k for k, m in metrics.items() if not m['mean'] > m[baseline]]
        cues[cue] = dict(
            num_samples=entry['num_samples'], metrics=metrics, below=below,
            verdict='below' if below else 'above',
            runs_above=sum(run[cue]['verdict'] == 'above' for run in runs))
    video = None
    if video_runs:
        video = {}
        for cue in video_runs[0]:
            video[cue] = {}
            for k in JF_KEYS:
                values = [run[cue][k] for run in video_runs]
                mean, std = mean_std(values)
                video[cue][k] = dict(mean=mean, std=std, values=values)
    return dict(num_runs=len(runs), cues=cues, video_level=video)


def format_summary(summary, label='model', baseline='union'):
    """Markdown lines of :func:`summarize`'s result."""
    n = summary['num_runs']
    cues = summary['cues']
    keys = list(next(iter(cues.values()))['metrics'])
    lines = ['| cue (samples) | predictions | ' + ' | '.join(keys) + ' |',
             '| --- ' * (len(keys) + 2) + '|']
    for cue, entry in cues.items():
        m = entry['metrics']
        lines.append(f'| {cue} ({entry["num_samples"]}) | {baseline} | ' +
                     ' | '.join(f'{m[k][baseline]:.1f}' for k in keys) +
                     ' |')
        lines.append(f'| {cue} | {label} ({n} runs) | ' + ' | '.join(
            f'{m[k]["mean"]:.1f} +- {m[k]["std"]:.1f}' for k in keys) + ' |')
    lines.append('')
    for cue, entry in cues.items():
        if entry['verdict'] == 'above':
            what = f'mean ABOVE the {baseline} baseline on every metric'
        else:
            what = f'mean BELOW the {baseline} baseline on ' + ', '.join(
                f'{k} ({entry["metrics"][k]["mean"]:.1f} vs '
                f'{entry["metrics"][k][baseline]:.1f})'
                for k in entry['below'])
        lines.append(f'{cue}: {what}; above on every metric in '
                     f'{entry["runs_above"]} of {n} runs')
    video = summary.get('video_level')
    if video:
        lines += ['', '| cue | ' + ' | '.join(JF_KEYS) + ' |',
                  '| --- ' * (len(JF_KEYS) + 1) + '|']
        for cue, res in video.items():
            lines.append(f'| {cue} | ' + ' | '.join(
                f'{res[k]["mean"]:.1f} +- {res[k]["std"]:.1f}'
                for k in JF_KEYS) + ' |')
    return lines


def main(argv=None):
    args = parse_args(argv)
    runs = [_load(d, 'verdicts.json') for d in args.work_dirs]
    video = [_load(d, 'scores_video_level.json', required=False)
             for d in args.work_dirs]
    video = [v for v in video if v is not None]
    summary = summarize(runs, video)
    summary['work_dirs'] = list(args.work_dirs)
    print('\n'.join(format_summary(summary, args.label)))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(summary, f, indent=1)


if __name__ == '__main__':
    run_cli(main, prog='summarize_runs.py')
