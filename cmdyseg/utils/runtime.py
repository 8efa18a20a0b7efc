# Copyright (c) cmdyseg contributors. All rights reserved.
"""Config adjustments shared by tools/train.py and tools/test.py."""
import os.path as osp
from typing import Optional


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
    processes (``tools/dist_train.sh CONFIG 2`` on a CPU machine)."""
    if cfg.get('launcher', 'none') == 'none':
        return
    import torch
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if not torch.cuda.is_available() and \
            dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
