# Copyright (c) cmdyseg contributors. All rights reserved.
"""Evaluate a cmdyseg checkpoint with mmengine's Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
        [--dump preds.pkl|preds.json] [--show-dir DIR]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

CHECKPOINT is a path or URL; a ``-<sha256 prefix>.pth`` name is verified.
``--dump x.pkl`` saves every prediction (data samples) with mmengine's
DumpResults; ``--dump x.json`` saves the predicted masks as RLE JSON.
"""
import argparse

from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner

# importing cmdyseg applies its compatibility fixes before any loading
from cmdyseg.utils.checkpoint import check_checkpoint
from cmdyseg.utils.runtime import (add_launch_args, destroy_dist,
                                   init_dist_without_cuda, parse_launch_args,
                                   set_dist_backend, set_work_dir)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a cmdyseg model')
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


def merge_args(cfg, args):
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = check_checkpoint(args.checkpoint)
    cfg.resume = False

    if args.dump is not None:
        metrics = _evaluators(cfg.get('test_evaluator'))
        if args.dump.endswith('.pkl'):
            metrics.append(dict(type='DumpResults', out_file_path=args.dump))
        elif args.dump.endswith('.json'):
            refer = [m for m in metrics if m.get('type') in (
                'ReferSegMetric', 'cmdyseg.ReferSegMetric')]
            if not refer:
                raise SystemExit('--dump *.json needs a ReferSegMetric in '
                                 'test_evaluator')
            refer[0]['dump_rle'] = args.dump
        else:
            raise SystemExit(f'--dump must end in .pkl or .json, got '
                             f'{args.dump!r}')
        cfg.test_evaluator = [ConfigDict(m) for m in metrics]

    if args.show_dir is not None:
        cfg.default_hooks.visualization = dict(
            type='ReferSegVisualizationHook',
            draw=True,
            test_out_dir=args.show_dir)

    set_dist_backend(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    init_dist_without_cuda(cfg)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    destroy_dist()
    return metrics


if __name__ == '__main__':
    main()
