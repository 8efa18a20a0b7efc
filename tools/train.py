# Copyright (c) cmdyseg contributors. All rights reserved.
"""Train a cmdyseg model with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--no-validate] [--auto-scale-lr] [--seed N] [--deterministic]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
        [--check] [--debug]

``--check`` only checks what can be checked before anything is written:
the config, the data folders and, with ``--resume``, that the checkpoint
loads into the model (tools/dist_train.sh runs it before torchrun). Bad
input ends with one line ``train.py: error: ...`` and status 1; a run that
fails before its first iteration removes the log folder and work dir it
created. ``--debug`` (or ``CMDYSEG_DEBUG=1``) shows the traceback instead
and keeps every file.
"""
import argparse
import os.path as osp

from mmengine.logging import print_log
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
        description='Train a cmdyseg model', epilog=DEBUG_HELP)
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
    parser.add_argument(
        '--check', action='store_true',
        help='only check the config, the data folders and the --resume '
        'checkpoint, then exit (writes nothing)')
    add_launch_args(parser, 'train_cfg.max_epochs=2')
    return parse_launch_args(parser, argv)


def merge_args(cfg, args):
    """Apply the command line to the config (a pure function of both)."""
    cfg.launcher = args.launcher
    # checked before the merge: mmengine's merge fails on some bad options
    # (a key below a number) with a TypeError that names no option
    apply_cfg_options(cfg, args.cfg_options, args.config)

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
                raise InvalidInputError(
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
            raise InvalidInputError('--auto-scale-lr: the config has no '
                                    'auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True

    if args.seed is not None or args.deterministic:
        randomness = dict(cfg.get('randomness', {}))
        if args.seed is not None:
            randomness['seed'] = args.seed
        randomness['deterministic'] = args.deterministic
        cfg.randomness = randomness

    set_dist_backend(cfg)
    # every class the Runner will build takes the arguments it is given:
    # a misspelt key fails here, before the Runner logs the config and
    # builds the model and the datasets
    check_config(cfg, args.cfg_options)
    return cfg


def resume_checkpoint(cfg):
    """The checkpoint that the run resumes from: ``--resume CKPT``, the
    latest one of the work dir for ``--resume``, None otherwise."""
    if not cfg.get('resume'):
        return None
    if cfg.get('load_from'):
        return cfg.load_from
    if not osp.isdir(cfg.work_dir):
        return None
    from mmengine.runner import find_latest_checkpoint
    return find_latest_checkpoint(cfg.work_dir)


def check_only(cfg, resume_from) -> None:
    """``--check``: build the model (no weights, nothing written) and check
    the checkpoint that the run would resume from."""
    if resume_from is not None:
        from cmdyseg.apis import init_model
        check_checkpoint_fits(init_model(cfg), resume_from)
    print(f'{cfg.filename}: checks passed', flush=True)


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(load_config(args.config), args)
    # before the Runner creates the work dir and builds the model
    check_data_roots(cfg, ('train_dataloader', 'val_dataloader'))
    resume_from = resume_checkpoint(cfg)
    if args.check:
        check_only(cfg, resume_from)
        return
    # read now: a truncated or unsafe file fails before anything is written
    state = None if resume_from is None else read_checkpoint_state(
        resume_from)
    init_dist_without_cuda(cfg)
    with FailedStartCleanup(cfg.work_dir, cfg.filename) as cleanup:
        runner = Runner.from_cfg(cfg)
        cleanup.watch(runner)
        if state is not None:
            # mmengine resumes with strict=False: another model's
            # checkpoint would only be warned about
            check_state_dict_fits(runner.model, state, resume_from)
            del state
        runner.train()
    destroy_dist()


if __name__ == '__main__':
    run_cli(main, prog='train.py')
