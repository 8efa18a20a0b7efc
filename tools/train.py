# Copyright (c) cmdyseg contributors. All rights reserved.
"""Train a cmdyseg model with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--no-validate] [--auto-scale-lr] [--seed N] [--deterministic]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

# importing cmdyseg applies its compatibility fixes before any loading
from cmdyseg.utils.checkpoint import check_checkpoint
from cmdyseg.utils.runtime import (add_launch_args, destroy_dist,
                                   init_dist_without_cuda, parse_launch_args,
                                   set_dist_backend, set_work_dir)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a cmdyseg model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir', help='where logs and checkpoints go (default: '
        './work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT, or, without a value, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true',
        help='automatic mixed precision (bf16 on GPUs that support it)')
    parser.add_argument(
        '--no-validate', action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the lr by (total batch size) / auto_scale_lr.base_batch_'
        'size')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument(
        '--deterministic', action='store_true',
        help='deterministic algorithms (slower)')
    add_launch_args(parser, 'train_cfg.max_epochs=2')
    return parse_launch_args(parser, argv)


def merge_args(cfg, args):
    """Apply the command line to the config (a pure function of both)."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    set_work_dir(cfg, args.config, args.work_dir)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = check_checkpoint(args.resume)

    if args.amp:
        optim_wrapper = cfg.optim_wrapper
        if optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config', 'current')
        else:
            import torch
            if not torch.cuda.is_available():
                raise SystemExit(
                    '--amp needs a CUDA device: mmengine runs mixed '
                    'precision only on accelerators')
            optim_wrapper.type = 'AmpOptimWrapper'
            if torch.cuda.is_bf16_supported():
                optim_wrapper.dtype = 'bfloat16'
            else:
                optim_wrapper.loss_scale = 'dynamic'

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or \
                'base_batch_size' not in cfg.auto_scale_lr:
            raise SystemExit('--auto-scale-lr: the config has no '
                             'auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True

    if args.seed is not None or args.deterministic:
        randomness = dict(cfg.get('randomness', {}))
        if args.seed is not None:
            randomness['seed'] = args.seed
        randomness['deterministic'] = args.deterministic
        cfg.randomness = randomness

    set_dist_backend(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    init_dist_without_cuda(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    destroy_dist()


if __name__ == '__main__':
    main()
