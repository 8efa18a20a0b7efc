# Copyright (c) cmdyseg contributors. All rights reserved.
"""Tests of the launch scripts tools/{dist,slurm}_{train,test}.sh.

The commands the scripts build are checked with a fake interpreter / fake
``srun`` that records its arguments; the slow test runs
``tools/dist_train.sh CONFIG 2`` for real: two gloo processes on CPU.
"""
import json
import os
import os.path as osp
import re
import socket
import stat
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')
SCRIPTS = ['dist_train.sh', 'dist_test.sh', 'slurm_train.sh', 'slurm_test.sh']
CONFIG = osp.join(
    ROOT, 'configs', 'cmdyconv',
    'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')

# A stand-in for python / srun: writes its arguments (one per line) and
# PYTHONPATH to $RECORD, and GLIBC_TUNABLES to $RECORD.env, then exits 0;
# tools/malloc_env.py it runs with the real interpreter ($REAL_PYTHON).
_RECORDER = """#!/usr/bin/env bash
case "$1" in */malloc_env.py) exec "$REAL_PYTHON" "$@" ;; esac
printf '%s\\n' "$@" > "$RECORD"
printf 'PYTHONPATH=%s\\n' "$PYTHONPATH" >> "$RECORD"
printf '%s' "${GLIBC_TUNABLES-unset}" > "$RECORD.env"
"""


def _recorder(folder, name):
    path = osp.join(folder, name)
    with open(path, 'w') as f:
        f.write(_RECORDER)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def _run_script(script, args, env_extra, record):
    env = {k: v for k, v in os.environ.items()
           if k not in ('NNODES', 'NODE_RANK', 'MASTER_ADDR', 'PORT', 'GPUS',
                        'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS',
                        'PYTHON', 'PYTHONPATH', 'GLIBC_TUNABLES',
                        'CMDYSEG_MALLOC_TUNABLES')}
    env.update(env_extra, RECORD=record, REAL_PYTHON=sys.executable)
    proc = subprocess.run(['bash', osp.join(TOOLS, script), *args],
                          env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    with open(record) as f:
        lines = f.read().splitlines()
    return lines[:-1], lines[-1]


@pytest.mark.parametrize('script', SCRIPTS)
def test_scripts_parse_and_are_executable(script):
    path = osp.join(TOOLS, script)
    assert os.access(path, os.X_OK), f'{path} is not executable'
    subprocess.run(['bash', '-n', path], check=True)
    with open(path) as f:
        lines = f.read().splitlines()
    # a comment (or blank line) inside a backslash-continued command ends
    # the command there and silently drops the rest (e.g. PYTHONPATH)
    for i, line in enumerate(lines[:-1]):
        if line.rstrip().endswith('\\') and \
                not line.lstrip().startswith('#'):
            nxt = lines[i + 1].strip()
            assert nxt and not nxt.startswith('#'), \
                f'{script}:{i + 2} breaks a continued command'


@pytest.mark.parametrize('script', SCRIPTS)
def test_scripts_need_their_arguments(script):
    proc = subprocess.run(['bash', osp.join(TOOLS, script), 'only_one'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'usage:' in proc.stderr


def test_dist_train_command(tmp_path):
    python = _recorder(str(tmp_path), 'python')
    record = str(tmp_path / 'args.txt')
    args, pythonpath = _run_script(
        'dist_train.sh', ['cfg.py', '4', '--work-dir', 'w d', '--amp'],
        dict(PYTHON=python, NNODES='2', NODE_RANK='1',
             MASTER_ADDR='10.0.0.7', PORT='12345', PYTHONPATH='/x'),
        record)
    assert args == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
        '--master_addr=10.0.0.7', '--master_port=12345',
        '--nproc_per_node=4',
        osp.join(ROOT, 'tools', 'train.py'), 'cfg.py', '--launcher',
        'pytorch', '--work-dir', 'w d', '--amp'
    ]
    assert pythonpath == f'PYTHONPATH={ROOT}:/x'


def _tunables(record):
    with open(record + '.env') as f:
        return f.read()


@pytest.mark.parametrize('script,args', [
    ('dist_train.sh', ['cfg.py', '1']),
    ('dist_test.sh', ['cfg.py', 'ckpt.pth', '1']),
])
def test_dist_scripts_set_malloc_tunables(tmp_path, script, args):
    python = _recorder(str(tmp_path), 'python')
    record = str(tmp_path / 'args.txt')
    _run_script(script, args, dict(PYTHON=python), record)
    assert _tunables(record) == (
        'glibc.malloc.mmap_threshold=33554432:'
        'glibc.malloc.trim_threshold=17179869184')
    # the user's own settings stay, theirs win on a shared key
    _run_script(script, args, dict(
        PYTHON=python,
        GLIBC_TUNABLES='glibc.malloc.trim_threshold=1:glibc.cpu.x86_ibt=0'),
        record)
    assert _tunables(record) == (
        'glibc.malloc.trim_threshold=1:glibc.cpu.x86_ibt=0:'
        'glibc.malloc.mmap_threshold=33554432')
    # switched off: the user's value, here none (empty, which glibc ignores)
    _run_script(script, args, dict(PYTHON=python,
                                   CMDYSEG_MALLOC_TUNABLES='0'), record)
    assert _tunables(record) == ''


def test_dist_test_command_defaults(tmp_path):
    python = _recorder(str(tmp_path), 'python')
    record = str(tmp_path / 'args.txt')
    args, pythonpath = _run_script(
        'dist_test.sh', ['cfg.py', 'ckpt.pth', '2', '--dump', 'p.pkl'],
        dict(PYTHON=python), record)
    assert args == [
        '-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0',
        '--master_addr=127.0.0.1', '--master_port=29500',
        '--nproc_per_node=2',
        osp.join(ROOT, 'tools', 'test.py'), 'cfg.py', 'ckpt.pth',
        '--launcher', 'pytorch', '--dump', 'p.pkl'
    ]
    assert pythonpath == f'PYTHONPATH={ROOT}'


def test_slurm_commands(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    _recorder(str(bin_dir), 'srun')
    record = str(tmp_path / 'args.txt')
    path = f'{bin_dir}:{os.environ["PATH"]}'
    args, pythonpath = _run_script(
        'slurm_train.sh', ['part', 'job', 'cfg.py', 'work', '--seed', '1'],
        dict(PATH=path, GPUS='4', CPUS_PER_TASK='3',
             SRUN_ARGS='--quotatype=auto --time=10'), record)
    assert args == [
        '-p', 'part', '--job-name=job', '--gres=gpu:4', '--ntasks=4',
        '--ntasks-per-node=4', '--cpus-per-task=3', '--kill-on-bad-exit=1',
        '--quotatype=auto', '--time=10', 'python', '-u',
        osp.join(ROOT, 'tools', 'train.py'), 'cfg.py', '--work-dir=work',
        '--launcher', 'slurm', '--seed', '1'
    ]
    assert pythonpath == f'PYTHONPATH={ROOT}'

    args, _ = _run_script(
        'slurm_test.sh', ['part', 'job', 'cfg.py', 'c.pth', '--dump', 'x'],
        dict(PATH=path, GPUS='16', PYTHON='py3'), record)
    assert args == [
        '-p', 'part', '--job-name=job', '--gres=gpu:8', '--ntasks=16',
        '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1',
        'py3', '-u',
        osp.join(ROOT, 'tools', 'test.py'), 'cfg.py', 'c.pth', '--launcher',
        'slurm', '--dump', 'x'
    ]


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.is_available() and torch.cuda.device_count() < 2,
    reason='one CUDA device: the script would put both ranks on it')
def test_dist_train_two_processes(tmp_path):
    """Two processes (gloo on CPU, NCCL with 2+ GPUs) train one iteration
    each on half the data and validate together."""
    from cmdyseg.synthetic import generate_synthetic_a2d
    data_root = str(tmp_path / 'data')
    generate_synthetic_a2d(data_root, seed=0, num_train=3, num_test=2,
                           num_frames=12, height=48, width=64)
    work_dir = str(tmp_path / 'work')
    opts = []
    # 3 validation samples: the sampler pads rank 1 with a copy of sample
    # 0, which the result collection must drop
    for split, num in (('train', 4), ('val', 3)):
        loader = f'{split}_dataloader'
        opts += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.dataset.indices={num}', f'{loader}.batch_size=2',
            f'{loader}.num_workers=0', f'{loader}.persistent_workers=False'
        ]
    opts += [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.logger.interval=1'
    ]
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()))
    proc = subprocess.run(
        ['bash', osp.join(TOOLS, 'dist_train.sh'), CONFIG, '2',
         '--work-dir', work_dir, '--cfg-options', *opts],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    (run, ) = [d for d in os.listdir(work_dir) if re.match(r'^\d{8}_', d)]
    with open(osp.join(work_dir, run, f'{run}.log')) as f:
        text = f.read()
    assert re.search(r'GPU number: 2\b', text)
    if not torch.cuda.is_available():
        assert "backend='gloo'" in text
    # 4 samples / (2 ranks x batch 2): one iteration per rank and epoch
    assert 'Epoch(train) [1][1/1]' in text
    # validation gathered both ranks' samples, without the padding copy
    assert 'Referring segmentation on 3 samples' in text
    with open(osp.join(work_dir, run, 'vis_data', f'{run}.json')) as f:
        records = [json.loads(line) for line in f if line.strip()]
    assert [r['iter'] for r in records if 'iter' in r] == [1]
    assert any('refer_seg/mIoU' in r for r in records)
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu',
                      weights_only=False)
    assert (ckpt['meta']['epoch'], ckpt['meta']['iter']) == (1, 1)
    # saved from the unwrapped model: no DistributedDataParallel prefix
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a CPU-only run')
def test_cpu_launcher_config_adjustments():
    """What makes a CPU launch work (cmdyseg.utils.runtime, used by
    tools/train.py and tools/test.py)."""
    from mmengine.config import Config

    from cmdyseg.utils.runtime import init_dist_without_cuda, set_dist_backend
    cfg = Config(dict(launcher='pytorch',
                      env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    set_dist_backend(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    # DistributedDataParallel takes no device ids for a CPU module
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    custom = Config(dict(launcher='pytorch', model_wrapper_cfg=dict(
        type='MMDistributedDataParallel', find_unused_parameters=True)))
    set_dist_backend(custom)
    assert custom.model_wrapper_cfg.to_dict() == dict(
        type='MMDistributedDataParallel', find_unused_parameters=True,
        device_ids=None)
    # without a launcher nothing changes
    plain = Config(dict(launcher='none'))
    set_dist_backend(plain)
    init_dist_without_cuda(plain)
    assert 'model_wrapper_cfg' not in plain and 'env_cfg' not in plain
    with pytest.raises(RuntimeError, match='--launcher slurm needs CUDA'):
        init_dist_without_cuda(Config(dict(launcher='slurm')))
