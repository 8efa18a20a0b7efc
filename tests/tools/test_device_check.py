# Copyright (c) cmdyseg contributors. All rights reserved.
"""tools/device_check.py: its --dry-run (the whole script on CPU, small
generated data, no installs) and the lists it installs from."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
from load_script import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'device_check.py')
device_check = load_script(SCRIPT, 'cmdyseg_tools_device_check')


def _pins(path):
    pins = {}
    with open(osp.join(ROOT, 'requirements', path)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            m = re.fullmatch(r'([A-Za-z0-9_.-]+)==(\S+)', line)
            if m:
                pins[m.group(1)] = m.group(2)
    return pins


def test_wheel_lists_follow_the_pins():
    """The folder of wheels holds the pinned stack, mmcv-lite in place of
    mmcv (the same version)."""
    pins = _pins('mminstall.txt')
    wanted = {p.split('==')[0]: p.split('==')[1]
              for p in device_check.PURE_WHEELS if '==' in p}
    assert wanted['mmengine'] == pins['mmengine']
    assert wanted['mmaction2'] == pins['mmaction2']
    assert wanted['mmcv-lite'] == pins['mmcv']
    planner = load_script(osp.join(ROOT, 'tools', 'setup_plan.py'),
                          'cmdyseg_tools_setup_plan_pins')
    assert planner.MMCV_VERSION == pins['mmcv']
    # every module a run imports is brought by a listed wheel or torch
    listed = {re.split(r'[=<>]', p)[0].lower()
              for p in device_check.PURE_WHEELS + device_check.COMPILED_WHEELS}
    for module, package in device_check.RUNTIME_MODULES.items():
        assert package.lower() in listed | {'torch'}, module


def test_print_pip_download():
    out = subprocess.run(
        [sys.executable, SCRIPT, '--print-pip-download', '--python-version',
         '3.12'], capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0]
    assert first.startswith('pip download --no-deps --only-binary=:all:')
    assert '--python-version 3.12' in first
    for pin in ('mmengine==0.10.7', 'mmcv-lite==2.1.0', 'mmaction2==1.2.0'):
        assert pin in first
    assert "'opencv-python-headless<5'" in out
    assert 'CMDYSEG_WITH_OPS=0 pip wheel' in out


def test_empty_wheel_folder_says_how_to_fill_it(tmp_path):
    with pytest.raises(SystemExit, match='pip download'):
        device_check.install_wheels(str(tmp_path))


def test_needs_wheels_unless_told_otherwise(tmp_path):
    out = subprocess.run([sys.executable, SCRIPT, '--out', str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and '--wheels DIR is needed' in out.stderr


@pytest.mark.slow
def test_dry_run_trains_tests_and_reports(tmp_path):
    """The whole script on CPU: the tiny config for 2 iterations, the paper
    config for 1 at a shrunk shape, tools/test.py on the tiny checkpoint;
    the JSON and the table say what ran and on which backend."""
    out_dir = tmp_path / 'dc'
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--dry-run', '--out', str(out_dir)],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    with open(out_dir / 'device_check.json') as f:
        report = json.load(f)
    assert report['dry_run'] is True and report['install'] is None
    assert report['environment']['device'] == 'cpu'
    assert 'cpu' in report['cmdyconv_auto']
    phases = {p['name']: p for p in report['phases']}
    assert list(phases) == ['train_tiny', 'train_paper', 'test_tiny']
    assert all(p['status'] == 'ok' for p in phases.values()), phases
    tiny, paper = phases['train_tiny'], phases['train_paper']
    assert len(tiny['step_s']) == 2 and tiny['batch'] == 2
    assert tiny['median_step_s'] > 0 and tiny['samples_per_s'] > 0
    assert len(paper['step_s']) == 1 and paper['batch'] == 1
    assert paper['shape'] == [32, 32]
    auto = report['cmdyconv_auto']['cpu'].split(' ')[0]
    for p in (tiny, paper):
        # the runs dispatched CMDyConv to the backend 'auto' names
        assert p['backends_used'] == [f'cpu:{auto}']
        assert 'peak_alloc_mib' not in p  # CPU: no GPU memory to report
    # only the tiny run keeps a checkpoint (the paper one is over 1 GiB)
    assert (out_dir / 'runs' / 'tiny' / 'epoch_1.pth').is_file()
    assert not list((out_dir / 'runs' / 'paper').glob('*.pth'))
    test = phases['test_tiny']
    assert test['samples'] == 2
    assert set(test['metrics']) == {'mIoU', 'oIoU', 'P@0.5', 'mAP'}
    table = (out_dir / 'device_check.md').read_text()
    assert '| train_tiny | dcmdyconv-temporal_i3d-r18' in table
    assert '| train_paper | dcmdyconv-temporal_i3d-r50' in table
    assert 'tools/test.py on the tiny checkpoint: ok' in table
    assert table in proc.stdout
