# Copyright (c) cmdyseg contributors. All rights reserved.
"""tools/malloc_env.py: the glibc malloc settings the launchers and the main
job give the processes they start (tests/tools/test_dist_train.py checks
the dist_*.sh launchers)."""
import os.path as osp
import subprocess
import sys

from load_script import load_script

TOOLS = osp.join(osp.dirname(__file__), '..', '..', 'tools')
SCRIPT = osp.join(TOOLS, 'malloc_env.py')
DEFAULT = ('glibc.malloc.mmap_threshold=33554432:'
           'glibc.malloc.trim_threshold=17179869184')


def _module():
    return load_script(SCRIPT, 'malloc_env')


def test_value_adds_only_the_keys_not_set():
    value = _module().tunables_value
    assert value('') == DEFAULT
    assert value(DEFAULT) == DEFAULT
    assert value('glibc.malloc.mmap_threshold=4096') == (
        'glibc.malloc.mmap_threshold=4096:'
        'glibc.malloc.trim_threshold=17179869184')
    assert value('glibc.cpu.x86_ibt=0:') == 'glibc.cpu.x86_ibt=0:' + DEFAULT


def test_environ_is_a_copy_and_can_be_switched_off():
    tuned = _module().tuned_environ
    base = {'PATH': '/bin'}
    env = tuned(base)
    assert env == {'PATH': '/bin', 'GLIBC_TUNABLES': DEFAULT}
    assert base == {'PATH': '/bin'}
    off = {'PATH': '/bin', 'CMDYSEG_MALLOC_TUNABLES': '0'}
    assert tuned(off) == off
    off['GLIBC_TUNABLES'] = 'glibc.cpu.x86_ibt=0'
    assert tuned(off) == off


def test_command_line():
    env = {'PATH': '/usr/bin:/bin'}
    run = subprocess.run([sys.executable, SCRIPT], env=env,
                         capture_output=True, text=True, check=True)
    assert run.stdout.strip() == DEFAULT
    bad = subprocess.run([sys.executable, SCRIPT, '--bogus'], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout == ''
    assert bad.stderr.strip().splitlines() == [
        "malloc_env.py: error: unexpected argument '--bogus' (it takes "
        'none; see --help)']


def test_main_job_gives_its_steps_the_settings(monkeypatch):
    main_job = load_script(osp.join(TOOLS, 'main_job.py'), 'main_job')
    monkeypatch.delenv('GLIBC_TUNABLES', raising=False)
    monkeypatch.delenv('CMDYSEG_MALLOC_TUNABLES', raising=False)
    env = main_job._child_environ(PYTHONUNBUFFERED='1')
    assert env['GLIBC_TUNABLES'] == DEFAULT
    assert env['PYTHONUNBUFFERED'] == '1'
    monkeypatch.setenv('CMDYSEG_MALLOC_TUNABLES', '0')
    assert 'GLIBC_TUNABLES' not in main_job._child_environ()
