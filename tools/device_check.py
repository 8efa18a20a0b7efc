# Copyright (c) cmdyseg contributors. All rights reserved.
"""One prepared check for whoever is lent a GPU: install, train, test,
measure.

    python tools/device_check.py --wheels WHEELS_DIR [--out DIR]
        [--iters 6] [--no-amp] [--skip-install]
    python tools/device_check.py --dry-run [--out DIR]      # CPU, for CI
    python tools/device_check.py --print-pip-download [--python-version 3.X]

Meant for an image that has torch with CUDA and Triton but no mmcv. It

1. installs every wheel of ``WHEELS_DIR`` with ``pip install --no-index
   --no-deps`` (prepare the folder on a machine with PyPI access, see
   ``--print-pip-download`` and docs/clusters.md): mmengine, mmcv-lite,
   mmaction2, their pure-Python dependencies and, when it is there, a
   ``cmdyseg`` wheel (else this checkout is imported through PYTHONPATH);
   then checks that every module a training run imports is there and names
   the missing ones (compiled packages such as opencv-python-headless,
   h5py, pycocotools, gensim, scipy must be in the image or the folder);
2. generates small synthetic A2D-layout data and random word vectors for
   its vocabulary (their values do not change a step's time);
3. trains ``--iters`` iterations of the tiny config
   (``dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64``, batch 8)
   and of the paper config
   (``dcmdyconv-temporal_i3d-r50_4xb9-10e_a2d-sentences-512x512``) at batch
   1 and its 16 x 512 x 512 clips, in fp32 and with ``--amp`` (bf16 where
   supported), each in its own process through tools/train.py's argument
   handling and mmengine's Runner;
4. runs ``tools/test.py`` on the tiny run's checkpoint;
5. writes ``device_check.json`` and ``device_check.md`` (a table) to
   ``--out``: per run the step times (first, median of the others),
   samples/s, peak GPU memory (``torch.cuda.max_memory_allocated`` and
   ``_reserved``), the CMDyConv backends the run dispatched to and the one
   ``'auto'`` picks per device with why, and the environment.

``--dry-run`` installs nothing and runs on CPU: 2 iterations of the tiny
config at batch 2, 1 iteration of the paper config at batch 1 with its
clips shrunk to 16 x 32 x 32 (the shape is the only change), and
tools/test.py on 2 samples -- the whole script, so that a GPU session does
not spend its minutes on a typo (tests/tools/test_device_check.py runs it).

Every phase runs in a subprocess (``--phase``), so that a failed or out of
memory run is recorded and the others still run; the exit status is 1 when
any phase failed.
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CONFIG = ('configs/cmdyconv/'
               'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
PAPER_CONFIG = ('configs/cmdyconv/'
                'dcmdyconv-temporal_i3d-r50_4xb9-10e_a2d-sentences-512x512.py')
# What the folder of wheels holds: the stack's pure-Python wheels (never in
# a GPU image) ...
PURE_WHEELS = [
    'mmengine==0.10.7', 'mmcv-lite==2.1.0', 'mmaction2==1.2.0', 'addict',
    'yapf', 'platformdirs', 'tomli', 'termcolor', 'rich', 'markdown-it-py',
    'mdurl', 'pygments', 'einops', 'importlib_metadata', 'zipp'
]
# ... and the compiled ones a training run imports, only where the image
# lacks them (for the image's Python and platform).
COMPILED_WHEELS = [
    'opencv-python-headless<5', 'h5py', 'pycocotools', 'gensim', 'scipy',
    'matplotlib', 'pyyaml', 'Pillow', 'numpy'
]
# module -> the package that brings it (the imports of a training run)
RUNTIME_MODULES = {
    'mmengine': 'mmengine', 'mmcv': 'mmcv-lite', 'mmaction': 'mmaction2',
    'addict': 'addict', 'yapf': 'yapf', 'termcolor': 'termcolor',
    'rich': 'rich', 'einops': 'einops',
    'importlib_metadata': 'importlib_metadata', 'cv2':
    'opencv-python-headless', 'h5py': 'h5py', 'pycocotools': 'pycocotools',
    'gensim': 'gensim', 'scipy': 'scipy', 'matplotlib': 'matplotlib',
    'yaml': 'pyyaml', 'PIL': 'Pillow', 'numpy': 'numpy', 'torch': 'torch'
}


def pip_download_commands(python_version=None):
    """The commands that fill a folder of wheels for the GPU image."""
    target = []
    if python_version:
        target = ['--python-version', python_version,
                  '--platform', 'manylinux_2_28_x86_64']
    pure = (['pip', 'download', '--no-deps', '--only-binary=:all:', '-d',
             'wheels'] + target + PURE_WHEELS)
    compiled = (['pip', 'download', '--no-deps', '--only-binary=:all:',
                 '-d', 'wheels'] + target + COMPILED_WHEELS)
    own = ['CMDYSEG_WITH_OPS=0', 'pip', 'wheel', '--no-deps',
           '--no-build-isolation', '-w', 'wheels', '.']
    return [
        ' '.join(shlex.quote(a) for a in pure),
        '# only those the image lacks: ' +
        ' '.join(shlex.quote(a) for a in compiled),
        '# cmdyseg itself, pure Python (optional: else the checkout is '
        'used): ' + ' '.join(own),
    ]


# --------------------------------------------------------------------------
# the parent: install, data, phases, report
# --------------------------------------------------------------------------
def _log(msg):
    print(f'[device_check] {msg}', flush=True)


def install_wheels(wheels_dir):
    """pip install every wheel of the folder (no index, no dependency
    resolution). Returns what it did, for the report."""
    wheels = sorted(glob.glob(osp.join(wheels_dir, '*.whl')))
    if not wheels:
        raise SystemExit(f'device_check: no wheels in {wheels_dir}; fill it '
                         'with:\n  ' + '\n  '.join(pip_download_commands()))
    cmd = [sys.executable, '-m', 'pip', 'install', '--no-index',
           '--no-deps', '--disable-pip-version-check', '-q', '--find-links',
           wheels_dir] + wheels
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return dict(wheels=[osp.basename(w) for w in wheels],
                seconds=round(time.perf_counter() - start, 1))


def missing_modules():
    """The modules of a training run that do not import, with the package
    that brings each."""
    import importlib.util
    return {mod: pkg for mod, pkg in RUNTIME_MODULES.items()
            if importlib.util.find_spec(mod) is None}


def _cmdyseg_env():
    """The environment of the phases: this checkout importable when no
    cmdyseg is installed."""
    env = dict(os.environ)
    import importlib.util
    spec = importlib.util.find_spec('cmdyseg')
    if spec is None or not (spec.origin or '').startswith(ROOT + os.sep):
        if spec is None:
            env['PYTHONPATH'] = ROOT + (os.pathsep + env['PYTHONPATH']
                                        if env.get('PYTHONPATH') else '')
    return env


def make_data(out_dir, dry_run):
    """Synthetic A2D-layout data and random word vectors (50-d for the
    tiny config, 300-d for the paper one) for its whole vocabulary."""
    import csv

    import numpy as np

    from cmdyseg.fileio.word_vectors import save_word2vec_binary
    from cmdyseg.models.text_encoders.tokenizer import tokenize
    from cmdyseg.synthetic import generate_synthetic_a2d
    root = osp.join(out_dir, 'data', 'synthetic_a2d')
    start = time.perf_counter()
    # 20 frames: the paper config's 16-frame clips fit
    generate_synthetic_a2d(
        root, seed=0, num_train=3 if dry_run else 12, num_test=2,
        num_frames=20, height=48 if dry_run else 96,
        width=64 if dry_run else 128, overwrite=True)
    words = set()
    with open(osp.join(root, 'a2d_annotation.txt'), newline='') as f:
        for row in csv.DictReader(f):
            words.update(tokenize(row['query'], max_words=None))
    words = sorted(words)
    rng = np.random.default_rng(0)
    vectors = {}
    for dims in (50, 300):
        path = osp.join(out_dir, 'data', f'word_vectors_{dims}d.bin')
        save_word2vec_binary(path, words, rng.standard_normal(
            (len(words), dims)).astype(np.float32))
        vectors[dims] = path
    return dict(root=root, vectors=vectors, words=len(words),
                seconds=round(time.perf_counter() - start, 1))


def _run_phase(spec, out_dir, env, timeout):
    spec_path = osp.join(out_dir, f'{spec["name"]}.spec.json')
    result_path = osp.join(out_dir, f'{spec["name"]}.result.json')
    log_path = osp.join(out_dir, f'{spec["name"]}.log')
    spec = dict(spec, result=result_path)
    with open(spec_path, 'w') as f:
        json.dump(spec, f, indent=1)
    _log(f'{spec["name"]}: {spec.get("config", "")} on {spec["device"]} '
         f'(log: {log_path})')
    if spec['kind'] == 'test':
        cmd = _test_command(spec)
        env = dict(env, LOCAL_RANK='0')
        if spec['device'] == 'cpu':
            env['CUDA_VISIBLE_DEVICES'] = ''
    else:
        cmd = [sys.executable, osp.abspath(__file__), '--phase', spec_path]
    start = time.perf_counter()
    with open(log_path, 'w') as log:
        try:
            proc = subprocess.run(
                cmd, cwd=ROOT, env=env, stdout=log,
                stderr=subprocess.STDOUT, timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = 'timeout'
    wall = round(time.perf_counter() - start, 1)
    if spec['kind'] == 'test':
        with open(log_path, errors='replace') as f:
            lines = [line for line in f if 'refer_seg/mIoU' in line]
        metrics = {}
        for key, val in re.findall(r'refer_seg/([^\s:]+): (\S+)',
                                   lines[-1] if lines else ''):
            if key in ('mIoU', 'oIoU', 'P@0.5', 'mAP'):
                metrics[key] = float(val)
        with open(result_path, 'w') as f:
            json.dump(dict(samples=spec['samples'], metrics=metrics), f)
    result = dict(name=spec['name'], kind=spec['kind'],
                  config=spec['config'], device=spec['device'],
                  batch=spec['batch'], status='ok' if rc == 0 else 'failed',
                  returncode=rc, wall_s=wall, log=osp.basename(log_path))
    if osp.isfile(result_path):
        with open(result_path) as f:
            result.update(json.load(f))
    if rc != 0:
        with open(log_path, errors='replace') as f:
            result['log_tail'] = f.read()[-3000:]
        _log(f'{spec["name"]}: FAILED ({rc}); last lines of {log_path}:\n'
             + '\n'.join(result['log_tail'].splitlines()[-15:]))
    else:
        _log(f'{spec["name"]}: ok in {wall} s')
    return result


def _phases(args, data, device, work):
    iters = 2 if args.dry_run else args.iters
    tiny = dict(
        name='train_tiny', kind='train', config=TINY_CONFIG, device=device,
        batch=2 if args.dry_run else 8, iters=iters, amp=False,
        data_root=data['root'], vectors=data['vectors'][50], dims=50,
        work_dir=osp.join(work, 'tiny'), workers=0 if args.dry_run else 2,
        shape=None, save=True)
    paper = dict(
        name='train_paper', kind='train', config=PAPER_CONFIG,
        device=device, batch=1, iters=1 if args.dry_run else iters,
        amp=False, data_root=data['root'], vectors=data['vectors'][300],
        dims=300, work_dir=osp.join(work, 'paper'),
        workers=0 if args.dry_run else 2,
        # the only change of the dry run: 32 x 32 instead of 512 x 512
        shape=[32, 32] if args.dry_run else None, save=False)
    phases = [tiny, paper]
    if device == 'cuda' and args.amp:
        phases.append(dict(paper, name='train_paper_amp', amp=True,
                           work_dir=osp.join(work, 'paper_amp')))
    test = dict(
        name='test_tiny', kind='test', config=TINY_CONFIG, device=device,
        checkpoint=osp.join(work, 'tiny', 'epoch_1.pth'),
        batch=2 if args.dry_run else 8, samples=2 if args.dry_run else 16,
        data_root=data['root'], vectors=data['vectors'][50], dims=50,
        work_dir=osp.join(work, 'tiny_test'),
        workers=0 if args.dry_run else 2)
    return phases + [test]


def _fmt(val, spec='{:.3f}'):
    return '-' if val is None else spec.format(val)


def write_report(report, out_dir):
    with open(osp.join(out_dir, 'device_check.json'), 'w') as f:
        json.dump(report, f, indent=1)
    env = report['environment']
    lines = [
        '# cmdyseg device check',
        '',
        f'- machine: {env.get("gpu") or env.get("cpu")}; torch '
        f'{env.get("torch")} (CUDA {env.get("torch_cuda")}), triton '
        f'{env.get("triton")}, mmcv {env.get("mmcv")} '
        f'({env.get("mmcv_ops")})',
        '- CMDyConv auto: ' + '; '.join(
            f'{k}: {v}' for k, v in report['cmdyconv_auto'].items()),
        f'- dry run: {report["dry_run"]}; generated data: '
        f'{report["data"]["words"]} words, {report["data"]["seconds"]} s',
        '',
        '| run | config | device | batch | AMP | iters | first step (s) | '
        'median step (s) | samples/s | peak alloc (MiB) | peak reserved '
        '(MiB) | CMDyConv backends | status |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- '
        '| --- | --- |',
    ]
    for r in report['phases']:
        if r.get('kind') == 'test':
            continue
        lines.append(
            f'| {r["name"]} | {osp.basename(r.get("config", ""))} | '
            f'{r.get("device")} | {r.get("batch")} | '
            f'{r.get("amp_dtype") or "no"} | {len(r.get("step_s", []))} | '
            f'{_fmt(r.get("first_step_s"))} | '
            f'{_fmt(r.get("median_step_s"))} | '
            f'{_fmt(r.get("samples_per_s"), "{:.2f}")} | '
            f'{_fmt(r.get("peak_alloc_mib"), "{:.0f}")} | '
            f'{_fmt(r.get("peak_reserved_mib"), "{:.0f}")} | '
            f'{", ".join(r.get("backends_used", [])) or "-"} | '
            f'{r["status"]} |')
    for r in report['phases']:
        if r.get('kind') == 'test':
            lines += [
                '',
                f'tools/test.py on the tiny checkpoint: {r["status"]} in '
                f'{r["wall_s"]} s ({r.get("samples")} samples); '
                + ', '.join(f'{k} {v:.1f}'
                            for k, v in (r.get('metrics') or {}).items())
                + ' (random weights after a few steps: not a result)'
            ]
    text = '\n'.join(lines) + '\n'
    with open(osp.join(out_dir, 'device_check.md'), 'w') as f:
        f.write(text)
    return text


def _environment(device):
    import torch
    env = dict(python=platform.python_version(), torch=torch.__version__,
               torch_cuda=torch.version.cuda, cpu=platform.processor()
               or platform.machine(), device=device)
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    env['cpu'] = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    env['cpu_count'] = os.cpu_count()
    if torch.cuda.is_available():
        env['gpu'] = torch.cuda.get_device_name(0)
        props = torch.cuda.get_device_properties(0)
        env['gpu_memory_mib'] = round(props.total_memory / 2**20)
        env['bf16'] = bool(torch.cuda.is_bf16_supported())
    from cmdyseg.utils import collect_env
    full = collect_env()
    env['mmcv'] = full.get('MMCV')
    env['mmcv_ops'] = full.get('MMCV compiled ops')
    env['mmengine'] = full.get('MMEngine')
    env['mmaction2'] = full.get('MMAction2')
    env['cmdyseg_cpu_kernel'] = full.get('cmdyseg CPU kernel')
    try:
        import importlib.metadata as md
        env['triton'] = md.version('triton')
    except Exception:
        env['triton'] = None
    auto = {k[len('CMDyConv backend ('):-1]: v
            for k, v in full.items() if k.startswith('CMDyConv backend (')}
    return env, auto


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Install, train, test and measure on a lent GPU')
    parser.add_argument('--wheels', help='folder of wheels to install')
    parser.add_argument('--skip-install', action='store_true',
                        help='the stack is installed already')
    parser.add_argument('--out', default=osp.join('work_dirs',
                                                  'device_check'),
                        help='where the data, runs and report go')
    parser.add_argument('--iters', type=int, default=6,
                        help='training iterations per run (default 6)')
    parser.add_argument('--no-amp', dest='amp', action='store_false',
                        help='skip the AMP run of the paper config')
    parser.add_argument('--device', choices=('cuda', 'cpu'),
                        help='default: cuda when available (the dry run: '
                        'cpu)')
    parser.add_argument('--timeout', type=int, default=900,
                        help='seconds per phase')
    parser.add_argument('--dry-run', action='store_true',
                        help='no installs, CPU, tiny shapes (for CI)')
    parser.add_argument('--print-pip-download', action='store_true',
                        help='print the commands that fill --wheels')
    parser.add_argument('--python-version',
                        help="the GPU image's Python (e.g. 3.12), for "
                        '--print-pip-download')
    parser.add_argument('--phase', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        return run_phase(args.phase)
    if args.print_pip_download:
        print('\n'.join(pip_download_commands(args.python_version)))
        return 0

    out_dir = osp.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    started = time.perf_counter()
    report = dict(dry_run=args.dry_run, install=None)
    if not args.dry_run and not args.skip_install:
        if not args.wheels:
            parser.error('--wheels DIR is needed (or --skip-install, or '
                         '--dry-run)')
        _log(f'installing the wheels of {args.wheels}')
        report['install'] = install_wheels(args.wheels)
    missing = missing_modules()
    if missing:
        raise SystemExit(
            'device_check: these modules do not import: ' + ', '.join(
                f'{m} (package {p})' for m, p in sorted(missing.items())) +
            '\nput their wheels into the --wheels folder (see '
            '--print-pip-download)')
    env = _cmdyseg_env()
    if not args.dry_run:
        env.pop('TRITON_INTERPRET', None)
    if 'PYTHONPATH' in env and ROOT in env['PYTHONPATH'].split(os.pathsep):
        sys.path.insert(0, ROOT)
        report['cmdyseg_from'] = 'checkout (PYTHONPATH)'
    else:
        report['cmdyseg_from'] = 'installed'

    import torch
    device = args.device or ('cpu' if args.dry_run else
                             'cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('device_check: --device cuda but torch sees no '
                         'CUDA device')
    if device == 'cpu' and not args.dry_run:
        _log('no CUDA device: running the full shapes on CPU (slow)')
    report['environment'], report['cmdyconv_auto'] = _environment(device)
    _log(f'environment: {report["environment"]}')
    report['data'] = make_data(out_dir, args.dry_run)
    work = osp.join(out_dir, 'runs')
    report['phases'] = []
    for spec in _phases(args, report['data'], device, work):
        if spec['kind'] == 'test' and not osp.isfile(spec['checkpoint']):
            report['phases'].append(dict(
                name=spec['name'], kind='test', status='skipped',
                wall_s=0, reason='the tiny training run left no checkpoint'))
            continue
        report['phases'].append(_run_phase(spec, out_dir, env, args.timeout))
    report['total_s'] = round(time.perf_counter() - started, 1)
    print(write_report(report, out_dir), flush=True)
    _log(f'report: {osp.join(out_dir, "device_check.json")} and '
         f'device_check.md ({report["total_s"]} s)')
    return 0 if all(p['status'] == 'ok' for p in report['phases']) else 1


# --------------------------------------------------------------------------
# a phase (its own process)
# --------------------------------------------------------------------------
def _load_tool(name):
    import importlib.util
    path = osp.join(ROOT, 'tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(
        f'cmdyseg_device_check_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _loader_options(spec, splits, num):
    opts = []
    for split in splits:
        loader = f'{split}_dataloader'
        opts += [
            f'{loader}.dataset.data_root={spec["data_root"]}',
            f'{loader}.dataset.indices={num}',
            f'{loader}.batch_size={spec["batch"]}',
            f'{loader}.num_workers={spec["workers"]}',
            f'{loader}.persistent_workers=False',
        ]
    opts += [
        f'model.text_encoder.word_vectors.path={spec["vectors"]}',
        'model.text_encoder.word_vectors.format=word2vec_binary',
        f'model.text_encoder.word_vectors.dims={spec["dims"]}',
    ]
    return opts


def _set_shape(cfg, shape):
    """Resize every pipeline's clips to ``shape`` (w, h)."""
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        for step in loader.dataset.pipeline:
            if step.get('type') == 'mmaction.Resize':
                step['scale'] = tuple(shape)


class _StepTimer:
    """Wall time of every training iteration (CUDA synchronised)."""

    priority = 'LOWEST'

    def __init__(self, device):
        self.device = device
        self.times = []
        self._start = None

    def _sync(self):
        if self.device == 'cuda':
            import torch
            torch.cuda.synchronize()

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._sync()
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self._sync()
        self.times.append(time.perf_counter() - self._start)


def _make_hook(device):
    from mmengine.hooks import Hook

    class StepTimerHook(_StepTimer, Hook):
        pass

    return StepTimerHook(device)


def _backends_used():
    import importlib

    # (the package's ``cmdyconv`` attribute is the function)
    op = importlib.import_module('cmdyseg.models.layers.cmdyconv')
    return sorted({f'{dev}:{resolved}' for dev, _, resolved in op._LOGGED})


def run_phase(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    import torch
    result = dict(kind=spec['kind'], config=spec['config'],
                  device=spec['device'], batch=spec['batch'])
    if spec['device'] == 'cpu':
        # the Runner puts the model on a GPU whenever one is visible
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    os.environ.setdefault('LOCAL_RANK', '0')
    result.update(_train_phase(spec))
    if spec['device'] == 'cuda':
        result['peak_alloc_mib'] = round(
            torch.cuda.max_memory_allocated() / 2**20, 1)
        result['peak_reserved_mib'] = round(
            torch.cuda.max_memory_reserved() / 2**20, 1)
    result['backends_used'] = _backends_used()
    with open(spec['result'], 'w') as f:
        json.dump(result, f, indent=1)
    return 0


def _train_phase(spec):
    from mmengine.config import Config
    from mmengine.runner import Runner
    train_tool = _load_tool('train')
    config = osp.join(ROOT, spec['config'])
    num = spec['iters'] * spec['batch']
    argv = [config, '--work-dir', spec['work_dir'], '--no-validate']
    if spec['amp']:
        argv.append('--amp')
    argv += ['--cfg-options', 'train_cfg.max_epochs=1',
             'default_hooks.logger.interval=1', 'randomness.seed=0'
             ] + _loader_options(spec, ('train', ), num)
    if not spec['save']:
        # the paper model's checkpoint with Adam's state is over 1 GiB
        argv += ['default_hooks.checkpoint.interval=-1',
                 'default_hooks.checkpoint.save_last=False']
    args = train_tool.parse_args(argv)
    load_config = getattr(train_tool, 'load_config', Config.fromfile)
    cfg = train_tool.merge_args(load_config(config), args)
    # the synthetic data's actors and actions (the paper config names
    # A2D's)
    from cmdyseg.synthetic import load_synthetic_meta
    meta = load_synthetic_meta(spec['data_root'])['metainfo']
    cfg.train_dataloader.dataset.metainfo = dict(
        actors=tuple(meta['actors']), actions=tuple(meta['actions']))
    if spec['shape']:
        _set_shape(cfg, spec['shape'])
    runner = Runner.from_cfg(cfg)
    timer = _make_hook(spec['device'])
    runner.register_hook(timer, priority='LOWEST')
    runner.train()
    times = timer.times
    rest = times[1:] or times
    median = statistics.median(rest) if rest else None
    amp_dtype = None
    if spec['amp']:
        amp_dtype = str(cfg.optim_wrapper.get('dtype') or 'float16')
    return dict(
        step_s=[round(t, 4) for t in times],
        first_step_s=round(times[0], 4) if times else None,
        median_step_s=round(median, 4) if median else None,
        samples_per_s=round(spec['batch'] / median, 3) if median else None,
        amp_dtype=amp_dtype, shape=spec['shape'] or 'config')


def _test_command(spec):
    """tools/test.py on the tiny checkpoint, as a user runs it."""
    return [
        sys.executable, osp.join(ROOT, 'tools', 'test.py'),
        osp.join(ROOT, spec['config']), spec['checkpoint'], '--work-dir',
        spec['work_dir'], '--cfg-options'
    ] + _loader_options(spec, ('test', ), spec['samples'])


if __name__ == '__main__':
    sys.exit(main())
