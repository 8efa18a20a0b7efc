# Copyright (c) cmdyseg contributors. All rights reserved.
"""The main job on the embedded default data, end to end.

    python tools/main_job.py [--work-dir work_dirs/main_job] [--seed 0]
        [--config CONFIG] [--frame-level-only] [--cfg-options k=v ...]

1. generate the synthetic A2D-format dataset (data/synthetic_a2d), unless
   it is there already with the generator's default parameters (a copy made
   with other parameters, e.g. by an older version, is replaced: the folder
   holds generated data only);
2. train the tiny config on it (tools/train.py);
3. publish the final checkpoint under a hash-named file;
4. evaluate it (tools/test.py, predictions dumped as RLE JSON), and score
   two trivial baselines (empty mask; union of all actors) and the model
   per disambiguation cue (tools/analysis/evaluate_masks.py); a verdict
   per cue says whether the model is above the union baseline on every
   metric (``verdicts.json`` next to the predictions);
5. write the same test scenes in the Ref-YouTube-VOS layout
   (data/synthetic_ytvos) and test the same checkpoint at the video level
   (every frame of every expression, tools/test.py with the
   ReferVideoTestLoop config): J, F and J&F, overall and per cue;
6. run the demo on a test video with one of its sentences.
``--config`` trains and scores another tiny config the same way (e.g. the
DyConv ablation), ``--cfg-options`` changes the config for training and
testing alike (e.g. ``model.neck.use_temporal=False``); both want
``--frame-level-only`` (steps 1-4), unless the config has its own
``..._test-synthetic-ytvos.py``.
Each step is the command a user would run; this script only chains them
and prints where everything went. The full output of a step goes to its
log file in the work dir; the console gets the progress lines (epoch,
iteration / total, loss, ETA at every logger interval; dataset sizes;
checkpoints), see :func:`progress_line`.
"""
import argparse
import csv
import functools
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The default: the tiny model with a 2-D video encoder and the fine ConvLSTM
# on frame differences, the one that is above the union baseline on every
# cue and metric in every run (configs/cmdyconv/README.md, "What carries
# the motion"); the I3D tiny model is its base config.
CONFIG = osp.join(
    'configs', 'cmdyconv',
    'dcmdyconv-temporal-diff_r18_1xb8-2e_synthetic-a2d-8x64x64.py')
DATA_ROOT = osp.join('data', 'synthetic_a2d')
YTVOS_ROOT = osp.join('data', 'synthetic_ytvos')


@functools.lru_cache(maxsize=None)
def _malloc_env():
    """tools/malloc_env.py, loaded once (a script beside this one, not a
    package module)."""
    spec = importlib.util.spec_from_file_location(
        '_cmdyseg_malloc_env', osp.join(REPO, 'tools', 'malloc_env.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _child_environ(**extra):
    """The environment of a step's process: this one's, with the glibc
    malloc settings of tools/malloc_env.py (read at process start, so they
    are set here for the children, as the dist_*.sh launchers do)."""
    return _malloc_env().tuned_environ(dict(os.environ, **extra))


_ANSI = re.compile(r'\x1b\[[0-9;]*m')
# mmengine's LogProcessor: "Epoch(train)  [1][ 10/125]  ... eta: 0:09:12
# ... loss: 0.6931 ..." (by epoch) or "Iter(train) [ 10/1000]  ..."
_ITER_LINE = re.compile(r'(Epoch|Iter)\((train|val|test)\)\s*'
                        r'(?:\[(\d+)\])?\s*\[\s*(\d+)/(\d+)\]')
_ETA = re.compile(r'\beta: (\S+)')
_LOSS = re.compile(r'\bloss: (\S+)')
# other lines worth a console line: dataset sizes and indexing progress,
# checkpoints, resumption
_PASS = re.compile(r'Dataset: (\d+ samples|indexed )|Saving checkpoint|'
                   r'resumed epoch')
_LOG_PREFIX = re.compile(r'^\d\d/\d\d \d\d:\d\d:\d\d - mmengine - \w+ - ')


def progress_line(line):
    """The console line for one line of a tool's output, or None.

    An mmengine iteration line (every logger interval) becomes
    ``[train] epoch 1 iter 10/125 loss 0.6931 eta 0:09:12``; dataset,
    checkpoint and resumption lines are kept, without the logger's time
    stamp prefix; everything else only goes to the log file.
    """
    line = _ANSI.sub('', line).strip()
    match = _ITER_LINE.search(line)
    if match:
        _, mode, epoch, i, n = match.groups()
        parts = [f'[{mode}]']
        if epoch is not None:
            parts.append(f'epoch {epoch}')
        parts.append(f'iter {i}/{n}')
        loss = _LOSS.search(line)
        if loss:
            parts.append(f'loss {loss.group(1)}')
        eta = _ETA.search(line)
        if eta:
            parts.append(f'eta {eta.group(1)}')
        return ' '.join(parts)
    if _PASS.search(line):
        return _LOG_PREFIX.sub('', line)
    return None


def run(cmd, log_path=None):
    """Run one tool; its output goes to the terminal or, given ``log_path``,
    to that log, with the lines :func:`progress_line` picks echoed on the
    terminal as they come."""
    print('+ ' + ' '.join(cmd), flush=True)
    start = time.time()
    if log_path is None:
        subprocess.run(cmd, cwd=REPO, check=True, env=_child_environ())
        return time.time() - start
    # unbuffered: the child's lines arrive when they are written, not when
    # a pipe buffer fills
    env = _child_environ(PYTHONUNBUFFERED='1')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, text=True, errors='replace', bufsize=1)
        try:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                shown = progress_line(line)
                if shown is not None:
                    print('  ' + shown, flush=True)
        finally:
            proc.stdout.close()
            returncode = proc.wait()
    if returncode:
        with open(log_path) as log:
            tail = log.read()[-3000:]
        raise SystemExit(f'{cmd[1]} failed ({returncode}); the end '
                         f'of {log_path}:\n{tail}')
    return time.time() - start


def with_options(cmd, cfg_options=()):
    """``cmd`` with ``--cfg-options`` appended when there are any."""
    return list(cmd) + (['--cfg-options'] + list(cfg_options)
                        if cfg_options else [])


def train(work, seed=0, cfg_options=(), config=CONFIG):
    """Step 2: train the config into ``work`` (relative to the repository)
    with tools/train.py, its log in ``work/train.log`` and its progress on
    the console; returns the wall time in seconds."""
    train_cmd = with_options([
        sys.executable, 'tools/train.py', config, '--work-dir', work,
        '--seed', str(seed), '--no-validate'
    ], cfg_options)
    os.makedirs(osp.join(REPO, work), exist_ok=True)
    return run(train_cmd, osp.join(REPO, work, 'train.log'))


def data_is_current(data_root, layout='a2d'):
    """Whether ``data_root`` holds the dataset that the generator's
    defaults (seed 0) make (for the ytvos layout: its test scenes,
    ``num_train=0``); returns (bool, why)."""
    import inspect

    from cmdyseg.synthetic import (generate_synthetic_a2d,
                                   generate_synthetic_ytvos)
    generate = generate_synthetic_a2d if layout == 'a2d' else \
        generate_synthetic_ytvos
    meta_path = osp.join(data_root, 'synthetic_meta.json')
    if not osp.isfile(meta_path):
        return False, 'not generated yet'
    try:
        with open(meta_path, encoding='utf-8') as f:
            params = json.load(f)['params']
        params = dict(params)
    except (ValueError, KeyError, TypeError) as e:
        return False, f'{meta_path} is unreadable ({e!r})'
    wanted = {
        k: p.default
        for k, p in inspect.signature(generate).parameters.items()
        if p.default is not inspect.Parameter.empty and k in params
    }
    wanted['seed'] = 0
    if layout == 'ytvos':
        wanted['num_train'] = 0
    diff = {k: (params.get(k), v) for k, v in wanted.items()
            if params.get(k) != v}
    if diff:
        return False, 'made with other parameters: ' + ', '.join(
            f'{k}={have} (default {want})' for k, (have, want) in
            sorted(diff.items()))
    return True, ''


def video_level_scores(dump_path, data_root):
    """J, F, J&F (percent) of the video-level predictions dumped by
    tools/test.py, overall and per cue (from synthetic_meta.json)."""
    import mmengine
    import numpy as np
    from pycocotools import mask as mask_utils

    from cmdyseg.evaluation.functional import aggregate_jf, boundary_f, jaccard
    with open(osp.join(data_root, 'synthetic_meta.json')) as f:
        cues = json.load(f)['cues']
    records = []
    for rec in mmengine.load(dump_path):
        pred = np.stack([mask_utils.decode(r) for r in rec['pred_masks']])
        gt = np.stack([mask_utils.decode(r) for r in rec['gt_masks']])
        key = f"{rec['video_id']}/{rec['exp_id']}"
        records.append((rec['video_id'], rec['exp_id'], jaccard(pred, gt),
                        boundary_f(pred, gt), cues[key]))
    scores = aggregate_jf(records, by='category')
    table = {'all': dict(num_expressions=len(records))}
    for cue in ('all', ) + tuple(sorted({r[4] for r in records})):
        if cue != 'all':
            table[cue] = dict(
                num_expressions=sum(r[4] == cue for r in records))
        prefix = '' if cue == 'all' else f'{cue}/'
        for name in ('J', 'F', 'J&F'):
            table[cue][name] = 100.0 * scores[prefix + name]
    return table


#: metrics of the frame-level table and of the verdicts
METRICS = ('mAP', 'P@0.5', 'P@0.7', 'P@0.9', 'oIoU', 'mIoU')


def cue_verdicts(tables, baseline='union', keys=METRICS):
    """Per cue: the model's and the baselines' metrics, and whether the
    model is strictly above ``baseline`` on every one of ``keys``.

    Args:
        tables (dict): ``{'empty' | 'union' | 'model': scores}``, each
            scores dict as ``evaluate_masks.py --by-cue --out`` writes it
            (``{cue: {'<cue>/<metric>': value, 'num_samples': n}}``).

    Returns:
        dict: ``{cue: {'num_samples': n, 'metrics': {metric: {label:
        value}}, 'below': [metrics where the model is not above],
        'verdict': 'above' | 'below'}}``, cues in the model table's order.
    """
    out = {}
    for cue, res in tables['model'].items():
        metrics = {
            k: {label: table[cue][f'{cue}/{k}']
                for label, table in tables.items()}
            for k in keys
        }
        below = [k for k in keys
                 if not metrics[k]['model'] > metrics[k][baseline]]
        out[cue] = dict(
            num_samples=res['num_samples'], metrics=metrics, below=below,
            verdict='below' if below else 'above')
    return out


def verdict_line(cue, entry, baseline='union'):
    """One console line for :func:`cue_verdicts`' entry of ``cue``."""
    head = f'{cue} ({entry["num_samples"]} samples): '
    if entry['verdict'] == 'above':
        return head + (f'ABOVE the {baseline} baseline on every metric '
                       f'({", ".join(entry["metrics"])})')
    worse = ', '.join(
        f'{k} {entry["metrics"][k]["model"]:.1f} vs '
        f'{entry["metrics"][k][baseline]:.1f}' for k in entry['below'])
    return head + f'BELOW the {baseline} baseline on {worse}'


def first_test_sentence(data_root):
    """(video path, sentence) of the first test video, for the demo."""
    with open(osp.join(data_root, 'Release', 'videoset.csv')) as f:
        test_ids = [row[0] for row in csv.reader(f) if row[-1] == '1']
    with open(osp.join(data_root, 'a2d_annotation.txt')) as f:
        rows = list(csv.reader(f))[1:]
    for vid in test_ids:
        for row in rows:
            if row[0] == vid:
                return (osp.join(data_root, 'Release', 'clips320H',
                                 vid + '.mp4'), ','.join(row[2:]).strip())
    raise RuntimeError(f'no test sentence found under {data_root}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/main_job')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--config', default=CONFIG,
        help='a tiny config on the synthetic data (default: the main one)')
    parser.add_argument(
        '--frame-level-only', action='store_true',
        help='stop after the frame-level scores (no video-level test, no '
        'demo)')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[],
        help='passed to tools/train.py and tools/test.py (e.g. '
        'model.neck.use_temporal=False)')
    args = parser.parse_args(argv)
    py = sys.executable
    work = args.work_dir
    config = args.config
    ytvos_config = config[:-len('.py')] + '_test-synthetic-ytvos.py'
    if not osp.isfile(osp.join(REPO, config)):
        raise SystemExit(f'--config {config}: file not found')
    if not args.frame_level_only and not osp.isfile(
            osp.join(REPO, ytvos_config)):
        raise SystemExit(
            f'--config {config}: it has no video-level test config '
            f'({ytvos_config}); add --frame-level-only')
    opts = args.cfg_options
    os.makedirs(osp.join(REPO, work), exist_ok=True)
    times = {}

    current, why = data_is_current(osp.join(REPO, DATA_ROOT))
    if not current:
        print(f'{DATA_ROOT}: {why}; generating it', flush=True)
        times['generate data'] = run([
            py, 'tools/dataset_converters/generate_synthetic_a2d.py',
            DATA_ROOT, '--seed', '0', '--overwrite'
        ])

    times['train'] = train(work, args.seed, opts, config)
    with open(osp.join(REPO, work, 'last_checkpoint')) as f:
        last = f.read().strip()

    name = osp.splitext(osp.basename(config))[0]
    published = subprocess.run(
        [py, 'tools/model_converters/publish_model.py', last,
         osp.join(work, name)],
        cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()

    preds = osp.join(work, 'test_predictions.json')
    times['test'] = run(with_options([
        py, 'tools/test.py', config, published, '--work-dir', work,
        '--dump', preds
    ], opts), osp.join(REPO, work, 'test.log'))

    tables = {}
    for pred in ('empty', 'union', preds):
        out = osp.join(work, f'scores_{osp.basename(pred)}'.replace(
            '.json', '') + '.json')
        run([
            py, 'tools/analysis/evaluate_masks.py', config, '--pred', pred,
            '--by-cue', '--out', out
        ], osp.join(REPO, work, 'evaluate_masks.log'))
        with open(osp.join(REPO, out)) as f:
            tables['model' if pred == preds else pred] = json.load(f)

    verdicts = cue_verdicts(tables)
    verdicts_path = osp.join(work, 'verdicts.json')
    with open(osp.join(REPO, verdicts_path), 'w') as f:
        json.dump(verdicts, f, indent=1)

    jf_table = video_preds = None
    if not args.frame_level_only:
        current, why = data_is_current(osp.join(REPO, YTVOS_ROOT), 'ytvos')
        if not current:
            print(f'{YTVOS_ROOT}: {why}; generating it', flush=True)
            times['generate video-level data'] = run([
                py, 'tools/dataset_converters/generate_synthetic_a2d.py',
                YTVOS_ROOT, '--layout', 'ytvos', '--num-train', '0',
                '--seed', '0', '--overwrite'
            ])
        video_preds = osp.join(work, 'video_level_predictions.pkl')
        times['video-level test'] = run(with_options([
            py, 'tools/test.py', ytvos_config, published, '--work-dir', work,
            '--dump', video_preds
        ], opts), osp.join(REPO, work, 'test_video_level.log'))
        jf_table = video_level_scores(
            osp.join(REPO, video_preds), osp.join(REPO, YTVOS_ROOT))
        with open(osp.join(REPO, work, 'scores_video_level.json'), 'w') as f:
            json.dump(jf_table, f, indent=1)

        video, sentence = first_test_sentence(osp.join(REPO, DATA_ROOT))
        demo_out = osp.join(work, 'demo')
        times['demo'] = run([
            py, 'demo/inference.py', video, sentence, '--config', config,
            '--checkpoint', published, '--out', demo_out, '--overwrite'
        ])

    print('\nSynthetic A2D test set (%d samples), ReferSegMetric at the '
          'original frame size, per cue:' %
          tables['model']['all']['num_samples'])
    print('| cue (samples) | predictions | ' + ' | '.join(METRICS) + ' |')
    print('| --- ' * (len(METRICS) + 2) + '|')
    for cue, entry in verdicts.items():
        for label in tables:
            row = ' | '.join(f'{entry["metrics"][k][label]:.1f}'
                             for k in METRICS)
            print(f'| {cue} ({entry["num_samples"]}) | {label} | {row} |')
    print('\nVerdicts (model vs the union of all actors, which always '
          'contains the referred one):')
    for cue, entry in verdicts.items():
        print('  ' + verdict_line(cue, entry))
    if jf_table is not None:
        print('\nThe same test scenes at the video level (Ref-YouTube-VOS '
              'layout, every frame of %d expressions), J&F in percent:' %
              jf_table['all']['num_expressions'])
        print('| cue | expressions | J | F | J&F |')
        print('| --- | --- | --- | --- | --- |')
        for cue, res in jf_table.items():
            print(f"| {cue} | {res['num_expressions']} | {res['J']:.1f} | "
                  f"{res['F']:.1f} | {res['J&F']:.1f} |")
    print(f'\ncheckpoint: {published}')
    print(f'predictions: {preds}, verdicts: {verdicts_path}' +
          (f', video level: {video_preds}' if video_preds else ''))
    if jf_table is not None:
        print(f'demo ("{sentence}" on {video}): {demo_out}/ '
              '(overlay.mp4, overlay.gif, masks/, summary.json)')
    print('wall time: ' + ', '.join(f'{k} {v:.0f} s'
                                    for k, v in times.items()))


if __name__ == '__main__':
    # one line for bad input, --debug / CMDYSEG_DEBUG=1 for the traceback
    # (the tools it runs inherit CMDYSEG_DEBUG)
    from cmdyseg.utils.cli import run_cli
    run_cli(main, prog='main_job.py')
