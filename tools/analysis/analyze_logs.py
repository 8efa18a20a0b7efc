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

A directory argument is a work dir, a run dir or a ``vis_data`` dir. Of a
work dir the training run is read: the newest ``<timestamp>`` run whose
log has training lines (a test run written into the same work dir later
has none, or no scalar log at all). When that run resumed from a
checkpoint (its text log ``<timestamp>/<timestamp>.log`` says ``resumed
epoch: E, iter: I``), the runs before it are merged in: their lines up to
iteration ``I`` (validation up to epoch ``E``, or iteration ``I`` for an
iteration-based log), then the resumed run's, so that the curve covers
every iteration; where both have a line for the same iteration (or
validation step) the later run's wins. Without a text log, a run is taken
as resumed when its first training line comes after the previous run's
first one. A run dir, ``vis_data`` dir or file is read alone.

Curves are drawn against the training iteration: a validation point of
epoch ``e`` is placed at the last logged training iteration of epoch
``e``.
"""
import argparse
import json
import math
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from cmdyseg.utils.cli import run_cli
from cmdyseg.utils.errors import UserInputError

_TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')
# mmengine's Runner.resume() logs this line
_RESUMED = re.compile(r'resumed epoch: (\d+), iter: (\d+)')


class LogError(UserInputError, ValueError):
    """A log file is missing, empty or not an mmengine scalar log."""


def _scalar_log(vis_data: str) -> Optional[str]:
    """``<run>.json`` (else ``scalars.json``) of a ``vis_data`` folder."""
    run = osp.basename(osp.dirname(osp.abspath(vis_data)))
    for name in (f'{run}.json', 'scalars.json'):
        if osp.isfile(osp.join(vis_data, name)):
            return osp.join(vis_data, name)
    return None


def _is_work_dir(path: str) -> bool:
    return (osp.isdir(path)
            and osp.basename(osp.normpath(path)) != 'vis_data'
            and not osp.isdir(osp.join(path, 'vis_data')))


def _work_dir_runs(work_dir: str) -> List[Tuple[str, Optional[str]]]:
    """``(run folder, scalar log or None)`` of every ``<timestamp>`` run of
    a work dir, oldest first; raises when there is none."""
    runs = sorted(
        d for d in os.listdir(work_dir) if _TIMESTAMP.match(d)
        and osp.isdir(osp.join(work_dir, d, 'vis_data')))
    if not runs:
        raise LogError(
            f'no mmengine log in {work_dir}: expected <timestamp>/'
            'vis_data/<timestamp>.json (a work dir), vis_data/ (a run dir) '
            'or a .json file')
    return [(osp.join(work_dir, d),
             _scalar_log(osp.join(work_dir, d, 'vis_data'))) for d in runs]


def _has_training_lines(path: str) -> bool:
    """Whether a scalar log has a training line (``iter``); lines that do
    not parse are left for :func:`load_json_log` to report."""
    with open(path, encoding='utf-8') as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and 'iter' in record:
                return True
    return False


def _training_runs(work_dir: str) -> List[Tuple[str, str]]:
    """``(run folder, scalar log)`` of the runs with training lines, oldest
    first; when none has any, the newest run with a scalar log alone."""
    runs = _work_dir_runs(work_dir)
    with_log = [(run, log) for run, log in runs if log is not None]
    if not with_log:
        raise LogError(
            f'no scalar log in any run of {work_dir} (runs: '
            f'{[osp.basename(r) for r, _ in runs]}): expected <timestamp>/'
            'vis_data/<timestamp>.json or scalars.json')
    training = [(run, log) for run, log in with_log
                if _has_training_lines(log)]
    return training or with_log[-1:]


def find_json_log(path: str) -> str:
    """Resolve a work dir / run dir / vis_data dir / file to the JSON log.

    Args:
        path (str): a ``.json`` file, a ``vis_data`` folder, a run folder
            ``<timestamp>`` or a work dir holding run folders (its training
            run is used: the newest run whose log has training lines, or
            the newest run with a log when none has).

    Returns:
        str: path of the scalar log ``<timestamp>.json`` (``scalars.json``
        when the timestamped file is absent).
    """
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise LogError(f'log not found: {path} is neither a file nor a '
                       'directory')
    if _is_work_dir(path):
        return _training_runs(path)[-1][1]
    folder = path
    if osp.basename(osp.normpath(folder)) != 'vis_data':
        folder = osp.join(folder, 'vis_data')
    log = _scalar_log(folder)
    if log is None:
        run = osp.basename(osp.dirname(osp.abspath(folder)))
        raise LogError(f'no scalar log in {folder}: expected {run}.json or '
                       'scalars.json')
    return log


def _resume_point(run: str, train: List[dict],
                  previous_train: List[dict]) -> Optional[Tuple[int, int]]:
    """``(epoch, iter)`` a run resumed from, or None if it started afresh.

    Read from the run's text log (mmengine's ``resumed epoch: E, iter:
    I``); without one, a run whose first training line comes after the
    previous run's first one is taken as resumed just before that line.
    """
    text_log = osp.join(run, f'{osp.basename(run)}.log')
    if osp.isfile(text_log):
        with open(text_log, encoding='utf-8', errors='replace') as f:
            for line in f:
                match = _RESUMED.search(line)
                if match:
                    return int(match.group(1)), int(match.group(2))
        return None
    if not train or not previous_train:
        return None
    first = min(train, key=lambda r: r['iter'])
    if first['iter'] <= min(r['iter'] for r in previous_train):
        return None
    return int(first.get('epoch', 1)) - 1, first['iter'] - 1


def _merge(older: List[dict], newer: List[dict], key: str,
           last: int) -> List[dict]:
    """``older``'s records with ``key <= last``, then ``newer``'s, in
    ``key`` order; ``newer`` wins a tie."""
    merged = {r[key]: r for r in older if r[key] <= last}
    merged.update({r[key]: r for r in newer})
    return [merged[k] for k in sorted(merged)]


def load_training_log(path: str) -> Tuple[List[dict], List[dict], List[str]]:
    """The training and validation records of a work dir's training run,
    merged with the runs it resumed from (see the module documentation),
    or of one run dir / ``vis_data`` dir / file.

    Returns:
        tuple[list[dict], list[dict], list[str]]: training records (by
        iteration), validation records, and the JSON logs read, oldest
        first.
    """
    if not _is_work_dir(path):
        log = find_json_log(path)
        train, val = load_json_log(log)
        return train, val, [log]
    runs = _training_runs(path)
    run, log = runs[-1]
    train, val = load_json_log(log)
    sources = [log]
    own_train = train  # run k's own lines, without the runs merged in
    for k in range(len(runs) - 1, 0, -1):
        older_train, older_val = load_json_log(runs[k - 1][1])
        point = _resume_point(runs[k][0], own_train, older_train)
        if point is None:
            break
        epoch, it = point
        by_epoch = any('epoch' in r for r in older_train + train)
        train = _merge(older_train, train, 'iter', it)
        val = _merge(older_val, val, 'step', epoch if by_epoch else it)
        sources.insert(0, runs[k - 1][1])
        own_train = older_train
    return train, val, sources


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
    loaded = [load_training_log(p) for p in logs]
    labels = list(legend) if legend is not None else list(logs)
    curves: Dict[str, Dict[str, tuple]] = OrderedDict()
    for label, (train, val, sources) in zip(labels, loaded):
        curves[label] = OrderedDict()
        for key in keys:
            xs, ys = _series(train, val, key)
            if not xs:
                raise LogError(
                    f'{" + ".join(sources)} has no {key!r}; its keys are '
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
        dict: ``log`` (the JSON path; of a resumed run, the newest),
        ``logs`` (every JSON log read, oldest first), ``epochs``
        (``{epoch: mean s/iter}``), ``slowest_epoch``, ``fastest_epoch``,
        ``std_over_epochs`` (s/iter) and ``average_iter_time`` (s/iter,
        over all kept lines), ``iters`` (the last logged iteration).
    """
    train, _, sources = load_training_log(log)
    path = sources[-1]
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
        logs=sources,
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
            if len(res['logs']) > 1:
                print('resumed run, merged with: ' +
                      ', '.join(res['logs'][:-1]))
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
    # bad input: one line and status 1; --debug / CMDYSEG_DEBUG=1 for the
    # traceback
    run_cli(main, prog='analyze_logs.py')
