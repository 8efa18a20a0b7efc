# Copyright (c) cmdyseg contributors. All rights reserved.
"""Command-line and config handling shared by tools/train.py and
tools/test.py."""
import argparse
import os
import os.path as osp
from typing import Optional

from mmengine.config import DictAction

#: The help text of ``--cfg-options`` after its example (docs/train_test.md
#: says the same at more length).
CFG_OPTIONS_HELP = (
    'KEY=VALUE pairs, no spaces around "="; a VALUE of a,b or [a,b] is a '
    'list, (a,b) a tuple; 1, 1.5, true/false and None are read as int, '
    'float, bool and None. A top-level KEY the config does not have, an '
    'argument the configured class does not take, or a str where the '
    'config has a number or a bool is an error before anything is built. '
    'KEY._delete_=True replaces the section KEY by the options below it, '
    'e.g. train_cfg._delete_=True train_cfg.type=IterBasedTrainLoop '
    'train_cfg.max_iters=1000')


class CfgOptionsAction(DictAction):
    """``--cfg-options`` as mmengine's :class:`DictAction` parses it
    (``a=1 b.c=x,y d=[1,2] e=(1,2) f=true g=None``), with a
    :class:`~cmdyseg.utils.errors.ConfigError` (one line from the tools,
    status 1, like every other bad option) that names an item without
    ``=`` or with an empty key (DictAction stops with "not enough values to
    unpack"), or with unbalanced brackets."""

    def __call__(self, parser, namespace, values, option_string=None):
        from cmdyseg.utils.errors import ConfigError

        def error(message):
            raise ConfigError(message)

        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values or ():
            key, sep, value = item.partition('=')
            if not sep:
                hint = (': the config path goes before --cfg-options'
                        if item.endswith('.py') else '')
                error(f'{option_string}: {item!r} is not KEY=VALUE '
                      f'(no spaces around "="){hint}')
            if not key or '' in key.split('.'):
                what = 'an empty key' if not key else \
                    f'an empty part in its key {key!r}'
                error(f'{option_string}: {item!r} has {what} '
                      '(KEY=VALUE, KEY a dotted path such as '
                      'train_cfg.max_epochs)')
            try:
                options[key] = self._parse_iterable(value)
            except AssertionError:  # DictAction's bracket check
                error(f'{option_string}: {item!r} has unbalanced '
                      'brackets')
        setattr(namespace, self.dest, options)


def add_cfg_options_arg(parser: argparse.ArgumentParser, example: str) -> None:
    """``--cfg-options`` with :class:`CfgOptionsAction`."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        metavar='KEY=VALUE',
        help=f'override config entries, e.g. {example}. {CFG_OPTIONS_HELP}')


def add_launch_args(parser: argparse.ArgumentParser, example: str) -> None:
    """``--cfg-options``, ``--launcher`` and ``--local-rank``, as every
    OpenMMLab tool has them."""
    add_cfg_options_arg(parser, example)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torchrun passes LOCAL_RANK in the environment; older launchers pass
    # --local_rank / --local-rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(parser: argparse.ArgumentParser, argv=None):
    """Parse, and export ``LOCAL_RANK`` when the launcher passed it as an
    argument."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def set_work_dir(cfg, config_path: str, work_dir: Optional[str]) -> None:
    """``--work-dir`` wins, then the config's own ``work_dir``, then
    ``./work_dirs/<config name>`` (OpenMMLab's convention)."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def set_dist_backend(cfg) -> None:
    """Use gloo when a distributed launcher runs without CUDA: the configs
    ask for NCCL, which needs GPUs, and gloo runs the same job on CPU
    processes (``tools/dist_train.sh CONFIG 2`` on a CPU machine).

    Without CUDA the model wrapper also gets ``device_ids=None``: mmengine
    passes ``device_ids=[LOCAL_RANK]`` to DistributedDataParallel, which
    rejects device ids for a CPU module. A ``model_wrapper_cfg`` in the
    config is kept, only its ``device_ids`` is set.
    """
    if cfg.get('launcher', 'none') == 'none':
        return
    import torch
    if torch.cuda.is_available():
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    else:
        wrapper['device_ids'] = None


def init_dist_without_cuda(cfg) -> None:
    """Start the process group of a ``--launcher pytorch`` job on a machine
    without CUDA, before the Runner is built.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device(LOCAL_RANK)``
    first, which fails on a CPU-only torch build; the Runner skips its own
    initialisation when the group already exists. Reads ``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` from the environment
    (torchrun sets them) and ``env_cfg.dist_cfg`` (backend, timeout in
    seconds) from the config. Does nothing with CUDA, without a launcher or
    when the group exists already. The slurm and mpi launchers need CUDA
    (mmengine selects the device of each task); without it they raise a
    ``RuntimeError`` naming the launcher.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none':
        return
    import torch
    import torch.distributed as torch_dist
    if torch.cuda.is_available() or (torch_dist.is_available()
                                     and torch_dist.is_initialized()):
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA devices; on a machine '
            'without CUDA use --launcher pytorch (tools/dist_train.sh, '
            'tools/dist_test.sh), which trains with gloo on CPU processes')
    from datetime import timedelta
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    backend = dist_cfg.pop('backend', 'gloo')
    timeout = dist_cfg.pop('timeout', None)
    if timeout is not None:
        dist_cfg['timeout'] = timedelta(seconds=timeout)
    torch_dist.init_process_group(
        backend=backend,
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **dist_cfg)


def destroy_dist() -> None:
    """Shut the process group down at the end of a distributed run.

    Every rank waits at a barrier first, so that no rank tears down its
    connections while another still uses them: a gloo rank that exits with
    a live group can abort ("terminate called without an active
    exception", SIGABRT) and take the whole torchrun job down after the
    work is done. Does nothing when no group exists.
    """
    import torch.distributed as torch_dist
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
