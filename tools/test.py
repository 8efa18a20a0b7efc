# Copyright (c) cmdyseg contributors. All rights reserved.
"""Evaluate a cmdyseg checkpoint with mmengine's Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
        [--dump preds.pkl|preds.json] [--show-dir DIR]
        [--out DIR [--format-only]]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
        [--check] [--debug]

CHECKPOINT is a path or URL; a ``-<sha256 prefix>.pth`` name is verified,
and a checkpoint saved from another model is refused (mmengine would only
warn and test random weights).
``--dump x.pkl`` saves every prediction (data samples) with mmengine's
DumpResults; ``--dump x.json`` saves the predicted masks as RLE JSON.

Video-level configs (``test_cfg = dict(type='ReferVideoTestLoop')``:
Ref-YouTube-VOS, Ref-DAVIS17, MeViS) segment every listed frame of every
expression. ``--out DIR`` also writes ``DIR/Annotations/<video>/<exp_id>/
<frame>.png`` and ``DIR/submission.zip``, what the evaluation servers take;
``--format-only`` writes only those (for splits without public masks, e.g.
Ref-YouTube-VOS valid or MeViS valid), computing no metric.

``--check`` only checks the config, the data folder and that the checkpoint
loads into the model, and writes nothing (tools/dist_test.sh runs it
before torchrun). Bad input ends with one line ``test.py: error: ...`` and
status 1; a run that fails before its first iteration removes the log
folder and work dir it created. ``--debug`` (or ``CMDYSEG_DEBUG=1``) shows
the traceback instead and keeps every file.
"""
import argparse

from mmengine.config import ConfigDict
from mmengine.runner import Runner

# importing cmdyseg applies its compatibility fixes before any loading
from cmdyseg.utils.checkpoint import (check_checkpoint, check_checkpoint_fits,
                                      check_state_dict_fits,
                                      read_checkpoint_state)
from cmdyseg.utils.cli import (DEBUG_HELP, FailedStartCleanup,
                               check_data_roots, load_config, run_cli)
from cmdyseg.utils.config_check import apply_cfg_options, check_config
from cmdyseg.utils.errors import InvalidInputError
from cmdyseg.utils.runtime import (add_launch_args, destroy_dist,
                                   init_dist_without_cuda, parse_launch_args,
                                   set_dist_backend, set_work_dir)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test a cmdyseg model', epilog=DEBUG_HELP)
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file path or URL')
    parser.add_argument(
        '--work-dir', help='where logs and metrics go (default: '
        './work_dirs/<config name>)')
    parser.add_argument(
        '--dump', help='dump predictions to a .pkl (data samples) or '
        '.json (RLE masks) file')
    parser.add_argument(
        '--show-dir', help='write mask overlays of every test sample here '
        '(relative paths go under the work dir)')
    parser.add_argument(
        '--out', help='video-level configs: write the submission PNGs and '
        'zip (Annotations/<video>/<exp_id>/<frame>.png) into this folder')
    parser.add_argument(
        '--format-only', action='store_true',
        help='with --out: only write the submission files, compute no '
        'metric (splits without public masks)')
    parser.add_argument(
        '--check', action='store_true',
        help='only check the config, the data folder and that the '
        'checkpoint fits the model, then exit (writes nothing)')
    add_launch_args(parser, 'test_dataloader.batch_size=2')
    return parse_launch_args(parser, argv)


def _evaluators(cfg_evaluator):
    if cfg_evaluator is None:
        return []
    if isinstance(cfg_evaluator, (list, tuple)):
        return list(cfg_evaluator)
    if 'metrics' in cfg_evaluator:  # an Evaluator config
        return list(cfg_evaluator['metrics'])
    return [cfg_evaluator]


def _is_video_loop(test_cfg) -> bool:
    kind = str((test_cfg or {}).get('type', '')).split('.')[-1]
    return kind == 'ReferVideoTestLoop'


def merge_args(cfg, args):
    cfg.launcher = args.launcher
    apply_cfg_options(cfg, args.cfg_options, args.config)
    set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = check_checkpoint(args.checkpoint)
    cfg.resume = False

    video_level = _is_video_loop(cfg.get('test_cfg'))
    if args.dump is not None:
        metrics = _evaluators(cfg.get('test_evaluator'))
        if args.dump.endswith('.pkl'):
            # video level: one result per video, as the loop hands them over
            metrics.append(
                dict(
                    type='DumpVideoResults' if video_level else 'DumpResults',
                    out_file_path=args.dump))
        elif args.dump.endswith('.json'):
            refer = [m for m in metrics if m.get('type') in (
                'ReferSegMetric', 'cmdyseg.ReferSegMetric')]
            if not refer:
                raise InvalidInputError(
                    '--dump *.json needs a ReferSegMetric in test_evaluator')
            refer[0]['dump_rle'] = args.dump
        else:
            raise InvalidInputError(
                f'--dump must end in .pkl or .json, got {args.dump!r}')
        cfg.test_evaluator = [ConfigDict(m) for m in metrics]

    if args.format_only and args.out is None:
        raise InvalidInputError('--format-only needs --out DIR (the folder '
                                'the submission files go to)')
    if args.out is not None:
        if not video_level:
            raise InvalidInputError(
                f'--out / --format-only write per-frame submission files '
                f'of video-level tests, but {args.config} tests frame '
                "samples (its test_cfg is not ReferVideoTestLoop); use "
                '--dump to save its predictions')
        # the dataset config's submission settings (MeViS: video folders
        # at the zip's root), then the folder given here
        submission = dict(
            cfg.get('submission_cfg') or {},
            type='ReferVOSSubmission',
            out_dir=args.out)
        metrics = [] if args.format_only else _evaluators(
            cfg.get('test_evaluator'))
        cfg.test_evaluator = [ConfigDict(m) for m in metrics + [submission]]

    if args.show_dir is not None:
        if video_level:
            raise InvalidInputError(
                '--show-dir draws frame-level samples; for a video-level '
                'config run demo/inference.py on a video instead, or '
                'write the masks with --out DIR')
        cfg.default_hooks.visualization = dict(
            type='ReferSegVisualizationHook',
            draw=True,
            test_out_dir=args.show_dir)

    set_dist_backend(cfg)
    # every class the Runner will build takes the arguments it is given:
    # a misspelt key fails here, before the Runner logs the config and
    # builds the model and the datasets
    check_config(cfg, args.cfg_options)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(load_config(args.config), args)
    # before the Runner creates the work dir and builds the model
    check_data_roots(cfg, ('test_dataloader', ))
    if args.check:
        from cmdyseg.apis import init_model
        check_checkpoint_fits(init_model(cfg), cfg.load_from)
        print(f'{cfg.filename}: checks passed', flush=True)
        return None
    # read now: a truncated or unsafe file fails before anything is written
    state = read_checkpoint_state(cfg.load_from)
    init_dist_without_cuda(cfg)
    with FailedStartCleanup(cfg.work_dir, cfg.filename) as cleanup:
        runner = Runner.from_cfg(cfg)
        cleanup.watch(runner)
        # mmengine loads load_from with strict=False and only warns about
        # another model's checkpoint: check it before the dataset is built
        check_state_dict_fits(runner.model, state, cfg.load_from)
        del state
        metrics = runner.test()
    destroy_dist()
    return metrics


if __name__ == '__main__':
    run_cli(main, prog='test.py')
