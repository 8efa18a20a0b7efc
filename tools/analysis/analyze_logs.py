# Copyright (c) cmdyseg contributors. All rights reserved.
"""Plot training curves and summarise iteration times from mmengine logs.

    python tools/analysis/analyze_logs.py plot_curve WORK_DIR_OR_JSON_LOG... \\
        [--keys loss_mask refer_seg/mIoU] [--legend A B] [--title T] \\
        --out curves.png
    python tools/analysis/analyze_logs.py cal_train_time \\
        WORK_DIR_OR_JSON_LOG... [--include-outliers]

The logs are mmengine's scalar logs, ``<work_dir>/<timestamp>/vis_data/
<timestamp>.json`` (or ``scalars.json`` beside it): one JSON dict per line.

- Training lines carry ``iter`` (the global iteration, 1-based) and, with an
  epoch-based log processor, ``epoch``, next to ``lr``, the losses, ``time``
  (seconds per iteration, averaged over the log processor's window) and
  ``data_time``.
- Validation lines carry the metrics (``refer_seg/mIoU``, ...) and ``step``,
  which is the epoch for an epoch-based log and the iteration otherwise.

A directory argument is a work dir (its newest ``<timestamp>`` run is
read), a run dir or a ``vis_data`` dir. Curves are drawn against the
training iteration: a validation point of epoch ``e`` is placed at the last
logged training iteration of epoch ``e``.
"""
import argparse
import json
import math
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

_TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')


class LogError(ValueError):
    """A log file is missing, empty or not an mmengine scalar log."""


def find_json_log(path: str) -> str:
    """Resolve a work dir / run dir / vis_data dir / file to the JSON log.

    Args:
        path (str): a ``.json`` file, a ``vis_data`` folder, a run folder
            ``<timestamp>`` or a work dir holding run folders (the newest
            run, by timestamp name, is used).

    Returns:
        str: path of the scalar log ``<timestamp>.json`` (``scalars.json``
        when the timestamped file is absent).
    """
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise LogError(f'log not found: {path} is neither a file nor a '
                       'directory')
    folder = path
    if not osp.basename(osp.normpath(folder)) == 'vis_data':
        if osp.isdir(osp.join(folder, 'vis_data')):
            folder = osp.join(folder, 'vis_data')
        else:
            runs = sorted(
                d for d in os.listdir(folder) if _TIMESTAMP.match(d)
                and osp.isdir(osp.join(folder, d, 'vis_data')))
            if not runs:
                raise LogError(
                    f'no mmengine log in {path}: expected <timestamp>/'
                    'vis_data/<timestamp>.json (a work dir), vis_data/ (a '
                    'run dir) or a .json file')
            folder = osp.join(folder, runs[-1], 'vis_data')
    run = osp.basename(osp.dirname(osp.abspath(folder)))
    for name in (f'{run}.json', 'scalars.json'):
        if osp.isfile(osp.join(folder, name)):
            return osp.join(folder, name)
    raise LogError(f'no scalar log in {folder}: expected {run}.json or '
                   'scalars.json')


def load_json_log(path: str) -> Tuple[List[dict], List[dict]]:
    """Read an mmengine scalar log.

    Args:
        path (str): the JSON-lines file.

    Returns:
        tuple[list[dict], list[dict]]: the training records (lines with
        ``iter``) and the validation/test records (the other lines), each
        in file order.
    """
    if not osp.isfile(path):
        raise LogError(f'log file not found: {path}')
    train, val = [], []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise LogError(f'{path}, line {lineno}: not JSON ({e.msg}): '
                               f'{line[:80]!r}') from e
            if not isinstance(record, dict):
                raise LogError(f'{path}, line {lineno}: expected a JSON '
                               f'object, got {type(record).__name__}')
            if 'iter' in record:
                if not isinstance(record['iter'], int):
                    raise LogError(f'{path}, line {lineno}: "iter" must be '
                                   f'an integer, got {record["iter"]!r}')
                train.append(record)
            elif 'step' in record:
                val.append(record)
            else:
                raise LogError(
                    f'{path}, line {lineno}: neither "iter" (a training '
                    'line) nor "step" (a validation line); is this an '
                    'mmengine vis_data log?')
    if not train and not val:
        raise LogError(f'{path} holds no log records (empty file)')
    return train, val


def _series(train: List[dict], val: List[dict],
            key: str) -> Tuple[List[float], List[float]]:
    """(x, y) of ``key`` against the training iteration."""
    xs, ys = [], []
    for r in train:
        if key in r:
            xs.append(r['iter'])
            ys.append(_number(r[key]))
    if xs:
        return xs, ys
    # validation: step is an epoch when training lines carry epochs
    last_iter_of_epoch: Dict[int, int] = {}
    for r in train:
        if 'epoch' in r:
            e = r['epoch']
            last_iter_of_epoch[e] = max(last_iter_of_epoch.get(e, 0),
                                        r['iter'])
    for r in val:
        if key in r:
            step = r['step']
            xs.append(last_iter_of_epoch.get(step, step)
                      if last_iter_of_epoch else step)
            ys.append(_number(r[key]))
    return xs, ys


def _number(value) -> float:
    if value is None:
        return math.nan
    return float(value)


def _available_keys(train: List[dict], val: List[dict]) -> List[str]:
    skip = {'iter', 'epoch', 'step'}
    keys: 'OrderedDict[str, None]' = OrderedDict()
    for r in train + val:
        for k, v in r.items():
            if k not in skip and isinstance(v, (int, float)):
                keys[k] = None
    return list(keys)


def plot_curve(logs: Sequence[str],
               keys: Sequence[str],
               out: str,
               legend: Optional[Sequence[str]] = None,
               title: Optional[str] = None) -> Dict[str, Dict[str, tuple]]:
    """Plot ``keys`` of every log, one subplot per key, into ``out``.

    Args:
        logs (Sequence[str]): work dirs, run dirs or JSON log files.
        keys (Sequence[str]): scalar names, e.g. ``loss_mask`` (training)
            or ``refer_seg/mIoU`` (validation).
        out (str): image path; the format follows the extension (``.png``,
            ``.pdf``, ``.svg``...). Written atomically.
        legend (Sequence[str], optional): one label per log; defaults to the
            log paths.
        title (str, optional): figure title.

    Returns:
        dict: ``{label: {key: (xs, ys)}}``, the plotted points.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if not keys:
        raise ValueError('--keys needs at least one key')
    if not osp.splitext(out)[1]:
        raise ValueError(f'--out needs an image extension (.png, .pdf, '
                         f'.svg...), got {out!r}')
    if legend is not None and len(legend) != len(logs):
        raise ValueError(f'--legend has {len(legend)} labels for '
                         f'{len(logs)} logs')
    paths = [find_json_log(p) for p in logs]
    labels = list(legend) if legend is not None else list(logs)
    curves: Dict[str, Dict[str, tuple]] = OrderedDict()
    for label, path in zip(labels, paths):
        train, val = load_json_log(path)
        curves[label] = OrderedDict()
        for key in keys:
            xs, ys = _series(train, val, key)
            if not xs:
                raise LogError(
                    f'{path} has no {key!r}; its keys are '
                    f'{_available_keys(train, val)}')
            curves[label][key] = (xs, ys)

    fig, axes = plt.subplots(
        len(keys), 1, sharex=True, squeeze=False,
        figsize=(7, 2.6 * len(keys) + 0.6))
    for ax, key in zip(axes[:, 0], keys):
        for label, per_key in curves.items():
            xs, ys = per_key[key]
            marker = 'o' if len(xs) < 30 else None
            ax.plot(xs, ys, marker=marker, markersize=3,
                    label=f'{label}: {key}')
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
    axes[-1, 0].set_xlabel('iteration')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _savefig_atomic(fig, out)
    plt.close(fig)
    return curves


def _savefig_atomic(fig, out: str) -> None:
    from cmdyseg.fileio import atomic_write
    ext = osp.splitext(out)[1].lstrip('.').lower()
    with atomic_write(out, 'wb') as f:
        fig.savefig(f, format=ext, dpi=100)


def cal_train_time(log: str, include_outliers: bool = False) -> dict:
    """Iteration-time statistics of one training log.

    ``time`` of a training line is the mean seconds per iteration over the
    log processor's window. Per epoch (or over the whole log when it has no
    epochs) the logged values are averaged; unless ``include_outliers``,
    the first line of each epoch (warm-up, data loader start) is left out
    when the epoch has more than one line.

    Args:
        log (str): work dir, run dir or JSON log file.
        include_outliers (bool): keep the first line of each epoch.

    Returns:
        dict: ``log`` (the JSON path), ``epochs`` (``{epoch: mean s/iter}``),
        ``slowest_epoch``, ``fastest_epoch``, ``std_over_epochs`` (s/iter)
        and ``average_iter_time`` (s/iter, over all kept lines), ``iters``
        (the last logged iteration).
    """
    path = find_json_log(log)
    train, _ = load_json_log(path)
    train = [r for r in train if 'time' in r]
    if not train:
        raise LogError(f'{path} has no training lines with "time" (is it '
                       'the log of a test run?)')
    per_epoch: 'OrderedDict[int, List[float]]' = OrderedDict()
    for r in train:
        per_epoch.setdefault(r.get('epoch', 1), []).append(float(r['time']))
    means = OrderedDict()
    kept_all: List[float] = []
    for epoch, times in per_epoch.items():
        kept = times if include_outliers or len(times) == 1 else times[1:]
        means[epoch] = sum(kept) / len(kept)
        kept_all += kept
    avg = sum(means.values()) / len(means)
    std = math.sqrt(sum((m - avg)**2 for m in means.values()) / len(means))
    return dict(
        log=path,
        epochs=means,
        slowest_epoch=max(means, key=means.get),
        fastest_epoch=min(means, key=means.get),
        std_over_epochs=std,
        average_iter_time=sum(kept_all) / len(kept_all),
        iters=max(r['iter'] for r in train))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Analyse mmengine JSON logs (vis_data/*.json)')
    sub = parser.add_subparsers(dest='task', required=True)
    plot = sub.add_parser('plot_curve', help='plot scalars against the '
                          'training iteration')
    plot.add_argument('logs', nargs='+',
                      help='work dirs, run dirs or JSON log files')
    plot.add_argument('--keys', nargs='+', default=['loss'],
                      help='scalars to plot, e.g. loss_mask refer_seg/mIoU')
    plot.add_argument('--legend', nargs='+',
                      help='one label per log (default: the paths)')
    plot.add_argument('--title', help='figure title')
    plot.add_argument('--out', required=True,
                      help='output image (.png, .pdf, .svg...)')
    timing = sub.add_parser('cal_train_time',
                            help='seconds per iteration of training logs')
    timing.add_argument('logs', nargs='+',
                        help='work dirs, run dirs or JSON log files')
    timing.add_argument('--include-outliers', action='store_true',
                        help='keep the first logged line of each epoch')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.task == 'plot_curve':
            curves = plot_curve(args.logs, args.keys, args.out, args.legend,
                                args.title)
            points = sum(len(xs) for per_key in curves.values()
                         for xs, _ in per_key.values())
            print(f'wrote {args.out} ({len(curves)} log(s), '
                  f'{len(args.keys)} key(s), {points} points)')
            return curves
        results = []
        for log in args.logs:
            res = cal_train_time(log, args.include_outliers)
            epochs = res['epochs']
            print(f'-----Analyze train time of {res["log"]}-----')
            print(f'iterations logged up to {res["iters"]}')
            print(f'slowest epoch {res["slowest_epoch"]}, average time is '
                  f'{epochs[res["slowest_epoch"]]:.4f} s/iter')
            print(f'fastest epoch {res["fastest_epoch"]}, average time is '
                  f'{epochs[res["fastest_epoch"]]:.4f} s/iter')
            print(f'time std over epochs is {res["std_over_epochs"]:.4f}')
            print(f'average iter time: {res["average_iter_time"]:.4f} '
                  's/iter')
            results.append(res)
        return results
    except (LogError, ValueError) as e:
        raise SystemExit(f'analyze_logs: error: {e}')


if __name__ == '__main__':
    main()
