# Copyright (c) cmdyseg contributors. All rights reserved.
"""The decisions of tools/setup_env.sh (tools/setup_plan.py) on machines
faked with stand-in ``nvidia-smi`` / ``nvcc`` commands: no GPU needed, and
nothing is installed (``--plan``)."""
import os
import os.path as osp
import stat
import subprocess
import sys

import pytest
from load_script import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
planner = load_script(osp.join(ROOT, 'tools', 'setup_plan.py'),
                      'cmdyseg_tools_setup_plan')
TAGS = ('cp311', 'linux_x86_64')
H200 = dict(cmd='nvidia-smi', cuda='12.8', gpus=['NVIDIA H200'],
            archs=['9.0'])


def _plan(env=None, **kwargs):
    kwargs.setdefault('py_tags', TAGS)
    return planner.make_plan(env=env or {}, **kwargs)


def _nvcc(version):
    return dict(cmd='nvcc', cuda=version)


def _driver(cuda, archs=('9.0', )):
    return dict(cmd='nvidia-smi', cuda=cuda, gpus=['GPU'] * len(archs),
                archs=list(archs))


def test_cpu_default_builds_mmcv_as_before():
    plan = _plan()
    assert plan['device'] == 'cpu' and plan['mode'] == 'default'
    assert plan['torch_action'] == 'install'
    assert plan['torch_spec'] == 'torch==2.13.0'
    assert plan['torch_index'] is None
    assert plan['mmcv'] == 'build-cpu' and plan['force_cuda'] == '0'
    assert plan['cache_key'] == \
        'mmcv-2.1.0_torch-2.13.0+cpu_cpu_cp311_linux_x86_64'
    # the wheel cached before the key named torch's build is still found
    assert plan['legacy_cache_key'] == \
        'mmcv-2.1.0_torch-2.13.0_cp311_linux_x86_64'
    assert plan['cmdyconv_cpu'].startswith('cpp')
    assert plan['cmdyconv_cuda'] is None


def test_cpu_keeps_the_installed_torch_and_keys_on_its_build():
    plan = _plan(torch_installed=dict(version='2.13.0+cpu', cuda=None))
    assert plan['torch_action'] == 'keep'
    assert plan['cache_key'].startswith('mmcv-2.1.0_torch-2.13.0+cpu_cpu_')
    # a CUDA torch used for a CPU build keys apart, without the old key
    plan = _plan(torch_installed=dict(version='2.13.0+cu128', cuda='12.8'))
    assert plan['torch_action'] == 'keep'
    assert plan['cache_key'] == \
        'mmcv-2.1.0_torch-2.13.0+cu128_cpu_cp311_linux_x86_64'
    assert plan['legacy_cache_key'] is None
    # another version is replaced
    plan = _plan(torch_installed=dict(version='2.5.1+cpu', cuda=None))
    assert plan['torch_action'] == 'install'


def test_nvcc_without_a_driver_is_a_cpu_machine():
    """A CUDA toolkit on a machine without GPU driver (this CI's image has
    one) sets up for CPU; --cuda sets up for CUDA all the same."""
    plan = _plan(nvcc=_nvcc('13.0'))
    assert plan['device'] == 'cpu' and plan['mmcv'] == 'build-cpu'
    assert 'no GPU driver' in plan['device_why']
    plan = _plan(nvcc=_nvcc('13.0'), device='cuda')
    assert plan['device'] == 'cuda'
    assert plan['torch_spec'] == 'torch==2.13.0+cu130'
    assert plan['mmcv'] == 'build-cuda'


def test_lite_on_cpu():
    plan = _plan(lite=True)
    assert plan['mode'] == 'lite' and plan['mmcv'] == 'lite'
    assert plan['mmcv_package'] == 'mmcv-lite'
    assert plan['cache_key'] is None and plan['force_cuda'] is None
    assert plan['cmdyconv_cpu'].startswith('cpp')
    plan = _plan(lite=True, env=dict(CMDYSEG_WITH_OPS='0'))
    assert plan['cmdyconv_cpu'].startswith('torch')


def test_cuda_with_nvcc_builds_mmcv_with_cuda_and_keys_on_the_build():
    plan = _plan(driver=H200, nvcc=_nvcc('12.8'))
    assert plan['device'] == 'cuda'
    assert plan['torch_spec'] == 'torch==2.13.0+cu128'
    assert plan['torch_index'] == 'https://download.pytorch.org/whl/cu128'
    assert plan['mmcv'] == 'build-cuda' and plan['force_cuda'] == '1'
    assert plan['arch_list'] == '9.0'
    assert plan['cache_key'] == ('mmcv-2.1.0_torch-2.13.0+cu128_cuda-12.8_'
                                 'arch-9.0_cp311_linux_x86_64')
    assert plan['legacy_cache_key'] is None
    assert plan['cmdyconv_cuda'].startswith('triton')
    # TORCH_CUDA_ARCH_LIST wins over the detected GPUs, and keys apart
    plan = _plan(driver=_driver('12.8', ('8.0', '9.0')), nvcc=_nvcc('12.8'))
    assert plan['arch_list'] == '8.0;9.0'
    assert '_arch-8.0-9.0_' in plan['cache_key']
    plan = _plan(driver=H200, nvcc=_nvcc('12.8'),
                 env=dict(TORCH_CUDA_ARCH_LIST='8.0 9.0+PTX'))
    assert plan['arch_list'] == '8.0 9.0+PTX'
    assert '_arch-8.0-9.0+PTX_' in plan['cache_key']


def test_cuda_torch_build_follows_the_driver_and_nvcc():
    # the newest build the driver runs
    assert _plan(driver=_driver('13.1'))['torch_spec'] == \
        'torch==2.13.0+cu130'
    assert _plan(driver=_driver('12.9'))['torch_spec'] == \
        'torch==2.13.0+cu128'
    assert _plan(driver=_driver('12.6'))['torch_spec'] == \
        'torch==2.13.0+cu126'
    # a source build wants torch of nvcc's major version
    plan = _plan(driver=_driver('13.0'), nvcc=_nvcc('12.6'))
    assert plan['torch_spec'] == 'torch==2.13.0+cu128'
    assert plan['mmcv'] == 'build-cuda'
    assert "major" in plan['torch_why']
    # ... unless no build of that major runs: then no source build
    plan = _plan(driver=_driver('13.0'), nvcc=_nvcc('11.8'))
    assert plan['torch_spec'] == 'torch==2.13.0+cu130'
    assert plan['mmcv'] == 'lite' and 'another major' in plan['mmcv_why']
    # CMDYSEG_TORCH_CUDA_BUILDS replaces the list of builds
    plan = _plan(driver=_driver('12.4'),
                 env=dict(CMDYSEG_TORCH_CUDA_BUILDS='cu118 cu121 cu124'))
    assert plan['torch_spec'] == 'torch==2.13.0+cu124'


def test_cuda_driver_too_old_is_an_error_that_says_what_to_set():
    with pytest.raises(planner.PlanError, match='CMDYSEG_TORCH_INDEX_URL'):
        _plan(driver=_driver('11.4'))


def test_cuda_without_nvcc_uses_mmcv_lite_and_triton():
    plan = _plan(driver=_driver('13.0'))
    assert plan['mmcv'] == 'lite' and plan['mmcv_package'] == 'mmcv-lite'
    assert 'no nvcc' in plan['mmcv_why']
    assert plan['torch_spec'] == 'torch==2.13.0+cu130'
    assert plan['cmdyconv_cuda'].startswith('triton')
    # --cuda with neither tool: PyPI's default Linux wheel (a CUDA build)
    plan = _plan(device='cuda')
    assert plan['torch_spec'] == 'torch==2.13.0'
    assert plan['torch_index'] is None and plan['mmcv'] == 'lite'


def test_wheel_and_find_links_come_first(tmp_path):
    wheel = tmp_path / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    wheel.write_bytes(b'')
    env = dict(CMDYSEG_MMCV_WHEEL=str(wheel),
               CMDYSEG_MMCV_FIND_LINKS='https://example.invalid/mmcv/')
    plan = _plan(driver=H200, nvcc=_nvcc('12.8'), env=env)
    assert plan['mmcv'] == 'wheel' and str(wheel) in plan['mmcv_why']
    assert plan['cache_key'] is None
    del env['CMDYSEG_MMCV_WHEEL']
    plan = _plan(driver=H200, nvcc=_nvcc('12.8'), env=env)
    assert plan['mmcv'] == 'find-links'
    # on CPU too, and over a missing nvcc on CUDA
    assert _plan(env=env)['mmcv'] == 'find-links'
    assert _plan(driver=H200, env=env)['mmcv'] == 'find-links'
    # --lite wins over both
    assert _plan(lite=True, env=env)['mmcv'] == 'lite'
    with pytest.raises(planner.PlanError, match='not a file'):
        _plan(env=dict(CMDYSEG_MMCV_WHEEL=str(tmp_path / 'nope.whl')))


def test_torch_index_url_and_an_installed_cuda_torch():
    env = dict(CMDYSEG_TORCH_INDEX_URL='https://mirror.invalid/whl/cu128')
    plan = _plan(driver=H200, env=env)
    assert plan['torch_spec'] == 'torch==2.13.0'
    assert plan['torch_index'] == env['CMDYSEG_TORCH_INDEX_URL']
    plan = _plan(env=env)
    assert plan['torch_index'] == env['CMDYSEG_TORCH_INDEX_URL']
    # an installed torch 2.13.0 with CUDA is kept on CUDA; a CPU one is not
    have = dict(version='2.13.0+cu126', cuda='12.6')
    plan = _plan(driver=H200, nvcc=_nvcc('12.6'), torch_installed=have)
    assert plan['torch_action'] == 'keep'
    assert plan['cache_key'].startswith(
        'mmcv-2.1.0_torch-2.13.0+cu126_cuda-12.6_')
    plan = _plan(driver=H200,
                 torch_installed=dict(version='2.13.0+cpu', cuda=None))
    assert plan['torch_action'] == 'install'
    assert plan['torch_spec'] == 'torch==2.13.0+cu128'


def test_cpu_flag_wins_over_a_driver():
    plan = _plan(driver=H200, nvcc=_nvcc('12.8'), device='cpu')
    assert plan['device'] == 'cpu' and plan['mmcv'] == 'build-cpu'


# --------------------------------------------------------------------------
# the command line, with stand-in nvidia-smi / nvcc commands
# --------------------------------------------------------------------------
def _script(path, text):
    path.write_text('#!/bin/sh\n' + text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def fake_tools(tmp_path):
    smi = _script(
        tmp_path / 'nvidia-smi', 'case "$1" in\n'
        '  --query-gpu=*) echo "NVIDIA H200, 9.0";;\n'
        '  *) echo "| NVIDIA-SMI 570.00   Driver Version: 570.00   '
        'CUDA Version: 12.8 |";;\n'
        'esac\n')
    nvcc = _script(
        tmp_path / 'nvcc', 'echo "nvcc: NVIDIA (R) Cuda compiler driver"\n'
        'echo "Cuda compilation tools, release 12.8, V12.8.93"\n')
    broken = _script(tmp_path / 'broken-smi',
                     'echo "NVIDIA-SMI has failed" >&2; exit 9\n')
    return dict(smi=smi, nvcc=nvcc, broken=broken, tmp=tmp_path)


def _setup_plan(fake_tools, *args, smi='', nvcc='', **env):
    full_env = dict(os.environ)
    for key in ('CMDYSEG_MMCV_WHEEL', 'CMDYSEG_MMCV_FIND_LINKS',
                'CMDYSEG_TORCH_INDEX_URL', 'CMDYSEG_TORCH_CUDA_BUILDS',
                'TORCH_CUDA_ARCH_LIST', 'CMDYSEG_WITH_OPS'):
        full_env.pop(key, None)
    full_env.update(
        CMDYSEG_NVIDIA_SMI=smi, CMDYSEG_NVCC=nvcc, PYTHON=sys.executable,
        CMDYSEG_VENV=str(fake_tools['tmp'] / 'no-venv'), **env)
    return subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'setup_env.sh'), '--plan', *args],
        env=full_env, capture_output=True, text=True, timeout=120)


def test_setup_env_plan_on_faked_machines(fake_tools):
    out = _setup_plan(fake_tools)
    assert out.returncode == 0, out.stderr
    assert 'device: cpu' in out.stdout
    assert 'mmcv: build-cpu' in out.stdout
    assert 'mmcv cache key: mmcv-2.1.0_torch-2.13.0+cpu_cpu_' in out.stdout

    out = _setup_plan(fake_tools, smi=fake_tools['smi'],
                      nvcc=fake_tools['nvcc'])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].startswith('device: cuda (')
    assert 'gpus: NVIDIA H200' in lines
    assert 'driver CUDA: 12.8; nvcc: 12.8' in lines
    assert ('torch: install torch==2.13.0+cu128 from '
            'https://download.pytorch.org/whl/cu128') in out.stdout
    assert 'mmcv: build-cuda' in out.stdout
    assert 'TORCH_CUDA_ARCH_LIST: 9.0' in out.stdout
    assert ('mmcv cache key: mmcv-2.1.0_torch-2.13.0+cu128_cuda-12.8_'
            'arch-9.0_') in out.stdout
    assert 'CMDyConv auto on cuda: triton' in out.stdout

    out = _setup_plan(fake_tools, '--lite', smi=fake_tools['smi'])
    assert out.returncode == 0, out.stderr
    assert 'mmcv: lite' in out.stdout and 'device: cuda' in out.stdout

    out = _setup_plan(fake_tools, smi=fake_tools['smi'])
    assert 'mmcv: lite' in out.stdout and 'no nvcc' in out.stdout

    # a failing nvidia-smi (driver not loaded) is no GPU
    out = _setup_plan(fake_tools, smi=fake_tools['broken'],
                      nvcc=fake_tools['nvcc'])
    assert 'device: cpu' in out.stdout

    out = _setup_plan(fake_tools, '--cpu', smi=fake_tools['smi'])
    assert 'device: cpu (--cpu)' in out.stdout

    out = _setup_plan(fake_tools, '--dry-run', smi=fake_tools['smi'],
                      CMDYSEG_MMCV_FIND_LINKS=str(fake_tools['tmp']))
    assert 'mmcv: find-links' in out.stdout


def test_setup_env_plan_errors_and_arguments(fake_tools):
    out = _setup_plan(fake_tools, smi=fake_tools['smi'],
                      CMDYSEG_TORCH_CUDA_BUILDS='cu130')
    assert out.returncode == 3
    assert 'no torch 2.13.0 CUDA build' in out.stderr
    out = _setup_plan(fake_tools, '--bogus')
    assert out.returncode == 2 and 'unknown argument' in out.stderr


def test_plan_shell_format_round_trips():
    """What setup_env.sh evals: every value, quotes and newlines kept."""
    plan = _plan(driver=H200, nvcc=_nvcc('12.8'))
    sh = planner.format_sh(plan)
    code = sh + '\nprintf "%s|%s|%s" "$PLAN_MMCV" "$PLAN_CMDYCONV_CPU" ' \
        '"$PLAN_TEXT"'
    out = subprocess.run(['bash', '-c', code], capture_output=True,
                         text=True, check=True).stdout
    mmcv, cpu, text = out.split('|')
    assert mmcv == 'build-cuda'
    assert cpu == plan['cmdyconv_cpu'] and "cmdyseg's" in cpu
    assert text == planner.format_text(plan)
