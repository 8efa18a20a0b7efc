# Copyright (c) cmdyseg contributors. All rights reserved.
"""The decisions of ``tools/setup_env.sh``, as a plan that can be printed.

``tools/setup_env.sh`` asks this script what to install (which torch
build, from which index; where mmcv's compiled ops come from; the wheel
cache key) and then does it; ``bash tools/setup_env.sh --plan`` prints the
plan and installs nothing. The script uses the standard library only: it
runs before the virtualenv exists.

    python tools/setup_plan.py [--lite] [--cuda | --cpu]
        [--venv-python PY] [--format text|sh|json]

The plan
--------
device
    ``--cuda`` / ``--cpu`` when given; else ``cuda`` when ``nvidia-smi``
    runs (a GPU driver), ``cpu`` otherwise. ``nvcc`` alone (a CUDA toolkit
    without a driver, as CPU machines and CI images often carry) does not
    make a CUDA machine; ``--cuda`` sets one up all the same (a build
    node). ``nvcc`` is what builds mmcv's CUDA ops.
torch (``torch==2.13.0``)
    ``CMDYSEG_TORCH_INDEX_URL`` when set (the index pip installs torch
    from, e.g. ``https://download.pytorch.org/whl/cu128`` or ``.../cpu``).
    On CPU otherwise pip's configured index (PyPI), as before. On CUDA an
    installed ``torch 2.13.0`` with CUDA is kept; else the newest of torch's
    CUDA builds (``CMDYSEG_TORCH_CUDA_BUILDS``, default :data:`CUDA_BUILDS`)
    that the driver runs (its CUDA version, from ``nvidia-smi``, at least
    the build's) and, when ``nvcc`` will build mmcv, of nvcc's major
    version (torch refuses to compile extensions with another major), from
    ``https://download.pytorch.org/whl/<build>``. Without a driver version
    nvcc's version bounds it instead; with neither (``--cuda`` on a machine
    without both) PyPI's default Linux wheel, a CUDA build, is used.
mmcv (2.1.0)
    ``--lite``: ``mmcv-lite``, mmcv without its compiled ops (a pure-Python
    wheel); CMDyConv runs on cmdyseg's own kernels. Otherwise, in this
    order: the wheel ``CMDYSEG_MMCV_WHEEL`` names; ``mmcv==2.1.0`` as a
    wheel from ``CMDYSEG_MMCV_FIND_LINKS`` (a folder, or a URL such as
    OpenMMLab's per-torch/CUDA wheel pages); a source build with its ops
    (on CPU ``FORCE_CUDA=0``; on CUDA ``FORCE_CUDA=1`` when ``nvcc`` is
    there and matches torch's CUDA major), cached as a wheel; on CUDA
    without a usable ``nvcc``: mmcv-lite, with cmdyseg's Triton kernels.
cache key
    ``mmcv-<mmcv>_torch-<torch version with its build, e.g. 2.13.0+cu128>
    _<cpu | cuda-<nvcc version>_arch-<TORCH_CUDA_ARCH_LIST>>_<cpXY>_<plat>``
    under ``$CMDYSEG_CACHE_DIR/wheels``. CPU builds made before this key
    carried the torch build (``mmcv-2.1.0_torch-2.13.0_cp311_...``) are
    still found for a CPU torch.

Environment read (for tests, to fake a machine): ``CMDYSEG_NVIDIA_SMI``
and ``CMDYSEG_NVCC`` name the commands to run instead of ``nvidia-smi`` /
``nvcc`` (empty: absent); ``CUDA_HOME`` / ``CUDA_PATH`` are searched for
``bin/nvcc``; ``TORCH_CUDA_ARCH_LIST`` overrides the GPU architectures
that ``nvidia-smi`` reports; ``CMDYSEG_WITH_OPS=0`` (no CPU kernel).
"""
import argparse
import json
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig

TORCH_VERSION = '2.13.0'
MMCV_VERSION = '2.1.0'
# torch's CUDA builds assumed for torch 2.13.0 (download.pytorch.org is not
# reachable from the machine this was written on, so the list is not
# checked; PyPI's torch 2.14.1 Linux wheel is a CUDA 13.0 build).
# CMDYSEG_TORCH_CUDA_BUILDS="cu126 cu128" replaces it.
CUDA_BUILDS = ('cu126', 'cu128', 'cu130')
TORCH_INDEX = 'https://download.pytorch.org/whl/'


class PlanError(Exception):
    """No plan fits this machine; the message says what to set."""


def _version_tuple(text):
    return tuple(int(p) for p in text.split('.'))


def _build_version(build):
    """'cu128' -> (12, 8); 'cu130' -> (13, 0)."""
    m = re.fullmatch(r'cu(\d+)(\d)', build)
    if not m:
        raise PlanError(f'not a CUDA build name: {build!r} (expected e.g. '
                        'cu128)')
    return int(m.group(1)), int(m.group(2))


def _run(cmd, args):
    """stdout of ``cmd args`` or None when it cannot run or fails."""
    try:
        out = subprocess.run(
            shlex.split(cmd) + list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            universal_newlines=True,
            timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _command(env_name, default, env):
    """The command to run for a tool: ``$env_name`` when set (empty means
    absent), else ``default`` when on PATH."""
    if env_name in env:
        return env[env_name] or None
    return default() if callable(default) else shutil.which(default)


def _find_nvcc(env):
    found = shutil.which('nvcc')
    if found:
        return found
    for var in ('CUDA_HOME', 'CUDA_PATH'):
        if env.get(var):
            cand = osp.join(env[var], 'bin', 'nvcc')
            if osp.isfile(cand) and os.access(cand, os.X_OK):
                return cand
    return None


def detect_driver(env):
    """What ``nvidia-smi`` says: {'cmd', 'cuda', 'gpus', 'archs'} or
    None when it is absent or fails (no driver)."""
    cmd = _command('CMDYSEG_NVIDIA_SMI', 'nvidia-smi', env)
    if not cmd:
        return None
    out = _run(cmd, [])
    if out is None:
        return None
    m = re.search(r'CUDA Version:\s*(\d+\.\d+)', out)
    info = dict(cmd=cmd, cuda=m.group(1) if m else None, gpus=[], archs=[])
    query = _run(cmd, ['--query-gpu=name,compute_cap',
                       '--format=csv,noheader'])
    for line in (query or '').splitlines():
        parts = [p.strip() for p in line.split(',')]
        if len(parts) == 2 and re.fullmatch(r'\d+\.\d+', parts[1]):
            info['gpus'].append(parts[0])
            if parts[1] not in info['archs']:
                info['archs'].append(parts[1])
    return info


def detect_nvcc(env):
    """{'cmd', 'cuda'} from ``nvcc --version``, or None."""
    cmd = _command('CMDYSEG_NVCC', lambda: _find_nvcc(env), env)
    if not cmd:
        return None
    out = _run(cmd, ['--version'])
    if out is None:
        return None
    m = re.search(r'release (\d+\.\d+)', out)
    return dict(cmd=cmd, cuda=m.group(1) if m else None)


def query_torch(python):
    """{'version', 'cuda'} of the torch that ``python`` imports, or None."""
    if not python or not osp.exists(python):
        return None
    out = _run(shlex.quote(python), [
        '-c', 'import json, torch; print(json.dumps(dict('
        'version=torch.__version__, cuda=torch.version.cuda)))'
    ])
    if not out:
        return None
    try:
        return json.loads(out.strip().splitlines()[-1])
    except ValueError:
        return None


def python_tags(python=None):
    """('cp311', 'linux_x86_64') of ``python`` (default: this one)."""
    if python and osp.exists(python):
        out = _run(shlex.quote(python), [
            '-c', 'import sys, sysconfig; print(f"cp{sys.version_info[0]}'
            '{sys.version_info[1]}", sysconfig.get_platform().replace('
            '"-", "_"))'
        ])
        if out:
            tag, plat = out.split()
            return tag, plat
    return (f'cp{sys.version_info[0]}{sys.version_info[1]}',
            sysconfig.get_platform().replace('-', '_'))


def _choose_cuda_build(builds, driver_cuda, nvcc_cuda, want_nvcc_match):
    """The newest build the driver runs, of nvcc's major when asked (and
    possible). Returns (build, note)."""
    limit = driver_cuda or nvcc_cuda
    fits = [b for b in builds
            if _build_version(b) <= _version_tuple(limit)]
    if not fits:
        raise PlanError(
            f'no torch {TORCH_VERSION} CUDA build in {list(builds)} runs '
            f'on CUDA {limit} (the '
            f'{"driver" if driver_cuda else "nvcc"} version): update the '
            'driver, set CMDYSEG_TORCH_INDEX_URL (or '
            'CMDYSEG_TORCH_CUDA_BUILDS), or set up for CPU with --cpu')
    fits.sort(key=_build_version)
    note = (f'the newest of {" ".join(builds)} that CUDA {limit} '
            f'({"driver" if driver_cuda else "nvcc"}) runs')
    if want_nvcc_match and nvcc_cuda:
        major = _version_tuple(nvcc_cuda)[0]
        same = [b for b in fits if _build_version(b)[0] == major]
        if same:
            if same[-1] != fits[-1]:
                note += f', of nvcc {nvcc_cuda}\'s major version'
            return same[-1], note
    return fits[-1], note


def _arch_list(env, driver):
    if env.get('TORCH_CUDA_ARCH_LIST'):
        return env['TORCH_CUDA_ARCH_LIST'], 'TORCH_CUDA_ARCH_LIST'
    if driver and driver['archs']:
        return ';'.join(driver['archs']), 'the GPUs nvidia-smi lists'
    return None, 'not set: torch builds for every architecture it knows'


def cache_key(torch_version, ops, py_tag, plat):
    """The directory name of a cached mmcv wheel (see the module doc)."""
    return (f'mmcv-{MMCV_VERSION}_torch-{torch_version}_{ops}_{py_tag}_'
            f'{plat}')


def legacy_cache_key(torch_version, py_tag, plat):
    """The key of CPU builds made before the key carried torch's build."""
    base = torch_version.split('+')[0]
    return f'mmcv-{MMCV_VERSION}_torch-{base}_{py_tag}_{plat}'


def make_plan(lite=False, device=None, env=None, driver=None, nvcc=None,
              torch_installed=None, py_tags=None):
    """The plan as a dict (see the module doc).

    Args:
        lite (bool): ``--lite``.
        device (str, optional): ``'cuda'`` / ``'cpu'`` as forced by
            ``--cuda`` / ``--cpu``; None detects.
        env (dict): the environment (default ``os.environ``).
        driver, nvcc (dict, optional): :func:`detect_driver` /
            :func:`detect_nvcc` results (None: absent).
        torch_installed (dict, optional): ``{'version', 'cuda'}`` of the
            torch already in the virtualenv.
        py_tags (tuple): ``(py_tag, plat)`` of the virtualenv's Python.
    """
    env = os.environ if env is None else env
    py_tag, plat = py_tags or python_tags()
    plan = dict(mode='lite' if lite else 'default',
                torch_version=TORCH_VERSION, mmcv_version=MMCV_VERSION,
                py_tag=py_tag, plat=plat,
                driver_cuda=driver['cuda'] if driver else None,
                gpus=driver['gpus'] if driver else [],
                nvcc=nvcc['cmd'] if nvcc else None,
                nvcc_cuda=nvcc['cuda'] if nvcc else None)

    # -- device
    if device:
        plan['device'] = device
        plan['device_why'] = f'--{device}'
    elif driver:
        plan['device'] = 'cuda'
        plan['device_why'] = (f'{osp.basename(driver["cmd"])} runs (driver '
                              f'CUDA {driver["cuda"] or "?"})')
    elif nvcc:
        # a CUDA toolkit without a driver (CPU machines and CI images often
        # carry one) is no GPU: CPU, unless --cuda (a build node)
        plan['device'] = 'cpu'
        plan['device_why'] = (f'{osp.basename(nvcc["cmd"])} found (CUDA '
                              f'{nvcc["cuda"]}) but no GPU driver '
                              '(nvidia-smi): --cuda sets up for CUDA all the '
                              'same')
    else:
        plan['device'] = 'cpu'
        plan['device_why'] = 'no GPU driver (nvidia-smi) found'
    cuda = plan['device'] == 'cuda'

    # -- where mmcv's ops come from, before torch (a source build on CUDA
    # wants a torch of nvcc's major version)
    wheel = env.get('CMDYSEG_MMCV_WHEEL') or None
    find_links = env.get('CMDYSEG_MMCV_FIND_LINKS') or None
    nvcc_usable = bool(nvcc and nvcc['cuda'])
    if lite:
        mmcv = 'lite'
        mmcv_why = '--lite'
    elif wheel:
        mmcv = 'wheel'
        mmcv_why = f'CMDYSEG_MMCV_WHEEL={wheel}'
        if not osp.isfile(wheel):
            raise PlanError(f'CMDYSEG_MMCV_WHEEL={wheel} is not a file')
    elif find_links:
        mmcv = 'find-links'
        mmcv_why = f'CMDYSEG_MMCV_FIND_LINKS={find_links}'
    elif not cuda:
        mmcv = 'build-cpu'
        mmcv_why = 'no mmcv wheel given: built from source, FORCE_CUDA=0'
    elif nvcc_usable:
        mmcv = 'build-cuda'
        mmcv_why = (f'no mmcv wheel given, nvcc {nvcc["cuda"]} found: built '
                    'from source, FORCE_CUDA=1')
    else:
        mmcv = 'lite'
        mmcv_why = ('no mmcv wheel given (CMDYSEG_MMCV_WHEEL / '
                    'CMDYSEG_MMCV_FIND_LINKS) and no nvcc to build its ops: '
                    "mmcv-lite, CMDyConv on cmdyseg's Triton kernels")

    # -- torch
    index = env.get('CMDYSEG_TORCH_INDEX_URL') or None
    have = torch_installed
    have_ok = bool(have and have['version'].split('+')[0] == TORCH_VERSION
                   and (have.get('cuda') or not cuda))
    builds = tuple((env.get('CMDYSEG_TORCH_CUDA_BUILDS') or '').split()
                   ) or CUDA_BUILDS
    if index:
        plan.update(torch_action='keep' if have_ok else 'install',
                    torch_spec=f'torch=={TORCH_VERSION}', torch_index=index,
                    torch_why='CMDYSEG_TORCH_INDEX_URL')
        if have_ok:
            plan['torch_why'] += f' (torch {have["version"]} installed)'
    elif have_ok:
        plan.update(torch_action='keep', torch_spec=None, torch_index=None,
                    torch_why=f'torch {have["version"]} is installed')
    elif not cuda:
        plan.update(torch_action='install',
                    torch_spec=f'torch=={TORCH_VERSION}', torch_index=None,
                    torch_why='the CPU default; CMDYSEG_TORCH_INDEX_URL '
                    'names another index')
    elif not (plan['driver_cuda'] or plan['nvcc_cuda']):
        plan.update(torch_action='install',
                    torch_spec=f'torch=={TORCH_VERSION}', torch_index=None,
                    torch_why='no CUDA version known (neither nvidia-smi nor '
                    "nvcc): PyPI's default Linux wheel, a CUDA build")
    else:
        build, note = _choose_cuda_build(builds, plan['driver_cuda'],
                                         plan['nvcc_cuda'],
                                         mmcv == 'build-cuda')
        plan.update(torch_action='install',
                    torch_spec=f'torch=={TORCH_VERSION}+{build}',
                    torch_index=TORCH_INDEX + build, torch_why=note)

    # the torch build the mmcv key and checks use: the installed one, else
    # the planned one
    if plan['torch_action'] == 'keep':
        torch_full, torch_cuda = have['version'], have.get('cuda')
    elif plan['torch_spec'] and '+' in plan['torch_spec']:
        torch_full = plan['torch_spec'].split('==')[1]
        v = _build_version(torch_full.split('+')[1])
        torch_cuda = f'{v[0]}.{v[1]}'
    else:
        torch_full = TORCH_VERSION + ('' if cuda else '+cpu')
        torch_cuda = None
    plan['torch_expected'] = torch_full
    plan['torch_cuda_expected'] = torch_cuda

    if mmcv == 'build-cuda' and torch_cuda and \
            torch_cuda.split('.')[0] != nvcc['cuda'].split('.')[0]:
        mmcv = 'lite'
        mmcv_why = (f'nvcc {nvcc["cuda"]} cannot build against torch\'s CUDA '
                    f'{torch_cuda} (another major version): mmcv-lite, '
                    "CMDyConv on cmdyseg's Triton kernels (or point "
                    'CMDYSEG_MMCV_WHEEL / CMDYSEG_MMCV_FIND_LINKS at a '
                    'wheel)')
    plan['mmcv'] = mmcv
    plan['mmcv_why'] = mmcv_why
    plan['mmcv_package'] = ('mmcv-lite' if mmcv == 'lite' else 'mmcv')

    # -- the source build and its cache key
    plan['force_cuda'] = None
    plan['arch_list'] = None
    plan['cache_key'] = None
    plan['legacy_cache_key'] = None
    if mmcv == 'build-cpu':
        plan['force_cuda'] = '0'
        plan['cache_key'] = cache_key(torch_full, 'cpu', py_tag, plat)
        if not torch_cuda:
            plan['legacy_cache_key'] = legacy_cache_key(
                torch_full, py_tag, plat)
    elif mmcv == 'build-cuda':
        plan['force_cuda'] = '1'
        archs, arch_why = _arch_list(env, driver)
        plan['arch_list'] = archs
        plan['arch_why'] = arch_why
        arch_tag = (re.sub(r'[;\s]+', '-', archs) if archs else 'all')
        plan['cache_key'] = cache_key(
            torch_full, f'cuda-{nvcc["cuda"]}_arch-{arch_tag}', py_tag, plat)

    # -- what CMDyConv's 'auto' is expected to pick (collect_env says what
    # it did)
    with_ops = env.get('CMDYSEG_WITH_OPS', '1') != '0'
    plan['cmdyconv_cpu'] = (
        "cpp (cmdyseg's compiled CPU kernel, built by pip install -e .)"
        if with_ops else 'torch (CMDYSEG_WITH_OPS=0: no compiled CPU kernel)')
    if cuda:
        plan['cmdyconv_cuda'] = (
            'triton (comes with the Linux CUDA wheels of torch)'
            + ('' if mmcv == 'lite' else
               "; mmcv's compiled op when triton does not import"))
    else:
        plan['cmdyconv_cuda'] = None
    return plan


def plan_for_this_machine(lite=False, device=None, venv_python=None,
                          env=None):
    env = os.environ if env is None else env
    return make_plan(
        lite=lite, device=device, env=env, driver=detect_driver(env),
        nvcc=detect_nvcc(env), torch_installed=query_torch(venv_python),
        py_tags=python_tags(venv_python))


def format_text(plan):
    """The plan as ``--plan`` prints it."""
    lines = [
        f'mode: {plan["mode"]}',
        f'device: {plan["device"]} ({plan["device_why"]})',
    ]
    if plan['gpus']:
        lines.append(f'gpus: {", ".join(plan["gpus"])}')
    lines.append(f'driver CUDA: {plan["driver_cuda"] or "-"}; nvcc: '
                 f'{plan["nvcc_cuda"] or "-"}')
    if plan['torch_action'] == 'keep':
        lines.append(f'torch: keep {plan["torch_expected"]} '
                     f'({plan["torch_why"]})')
    else:
        src = plan['torch_index'] or "pip's configured index"
        lines.append(f'torch: install {plan["torch_spec"]} from {src} '
                     f'({plan["torch_why"]})')
    desc = {
        'lite': f'mmcv-lite=={MMCV_VERSION} (no compiled ops)',
        'wheel': 'the wheel CMDYSEG_MMCV_WHEEL names',
        'find-links': f'mmcv=={MMCV_VERSION} wheel from '
        'CMDYSEG_MMCV_FIND_LINKS',
        'build-cpu': f'mmcv=={MMCV_VERSION} built with its ops, FORCE_CUDA=0',
        'build-cuda': f'mmcv=={MMCV_VERSION} built with its ops, '
        'FORCE_CUDA=1',
    }[plan['mmcv']]
    lines.append(f'mmcv: {plan["mmcv"]}: {desc} ({plan["mmcv_why"]})')
    if plan['mmcv'] == 'build-cuda':
        lines.append(f'TORCH_CUDA_ARCH_LIST: {plan["arch_list"] or "-"} '
                     f'({plan["arch_why"]})')
    if plan['cache_key']:
        lines.append(f'mmcv cache key: {plan["cache_key"]}')
    if plan['legacy_cache_key']:
        lines.append(f'mmcv cache key (older setups): '
                     f'{plan["legacy_cache_key"]}')
    lines.append(f'CMDyConv auto on cpu: {plan["cmdyconv_cpu"]}')
    if plan['cmdyconv_cuda']:
        lines.append(f'CMDyConv auto on cuda: {plan["cmdyconv_cuda"]}')
    return '\n'.join(lines)


def format_sh(plan):
    """``PLAN_<KEY>=value`` lines for ``eval`` in bash (``PLAN_TEXT``: the
    plan as :func:`format_text` writes it)."""
    out = [f'PLAN_TEXT={shlex.quote(format_text(plan))}']
    for key, val in sorted(plan.items()):
        if isinstance(val, list):
            val = ','.join(val)
        val = '' if val is None else str(val)
        out.append(f'PLAN_{key.upper()}={shlex.quote(val)}')
    return '\n'.join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Print tools/setup_env.sh's plan for this machine")
    parser.add_argument('--lite', action='store_true')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--cuda', dest='device', action='store_const',
                       const='cuda')
    group.add_argument('--cpu', dest='device', action='store_const',
                       const='cpu')
    parser.add_argument('--venv-python',
                        help='the virtualenv interpreter (its torch, tags)')
    parser.add_argument('--format', choices=('text', 'sh', 'json'),
                        default='text')
    args = parser.parse_args(argv)
    try:
        plan = plan_for_this_machine(args.lite, args.device,
                                     args.venv_python)
    except PlanError as e:
        print(f'setup plan: {e}', file=sys.stderr)
        return 3
    if args.format == 'json':
        print(json.dumps(plan, indent=1, sort_keys=True))
    elif args.format == 'sh':
        print(format_sh(plan))
    else:
        print(format_text(plan))
    return 0


if __name__ == '__main__':
    sys.exit(main())
