# Copyright (c) cmdyseg contributors. All rights reserved.
"""cmdyseg.utils.errors and cmdyseg.utils.cli: one line for bad input, a
traceback for a bug, ``--debug`` / ``CMDYSEG_DEBUG``, and the cleanup of
runs that fail before they start."""
import os
import os.path as osp
import pickle
import subprocess
import sys
import textwrap

import pytest

from cmdyseg.utils.cli import (DEBUG_ENV, FailedStartCleanup, check_data_roots,
                               error_message, find_user_error, load_config,
                               run_cli)
from cmdyseg.utils.errors import (ConfigError, InputNotFoundError,
                                  UserInputError)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(autouse=True)
def _no_debug_env(monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)


def _raiser(exc):

    def main(argv):
        raise exc

    return main


def _mmengine_style(inner):
    """What mmengine's builders do with an error raised in ``__init__``:
    ``raise type(e)(f'class `X` in m.py: {e}')`` (no ``from``)."""

    def main(argv):
        try:
            raise inner
        except Exception as e:
            raise type(e)(f'class `A2DSentencesDataset` in '
                          f'cmdyseg/datasets/a2d_sentences.py: {e}')

    return main


# ------------------------------------------------------------ error classes
def test_library_errors_are_user_errors_and_keep_their_bases():
    from cmdyseg.apis.video import VideoReadError
    from cmdyseg.datasets.file_io import DataFileError
    from cmdyseg.fileio.word_vectors import WordVectorsNotFoundError
    from cmdyseg.models.backbones.pretrained import PretrainedMismatchError
    from cmdyseg.utils.checkpoint import (CheckpointError,
                                          CheckpointNotFoundError,
                                          UnsafeCheckpointError)
    from cmdyseg.utils.optional import MissingDependencyError
    expected = {
        CheckpointError: RuntimeError,
        CheckpointNotFoundError: FileNotFoundError,
        UnsafeCheckpointError: pickle.UnpicklingError,
        DataFileError: OSError,
        VideoReadError: ValueError,
        PretrainedMismatchError: ValueError,
        WordVectorsNotFoundError: FileNotFoundError,
        MissingDependencyError: ImportError,
        ConfigError: ValueError,
        InputNotFoundError: FileNotFoundError,
    }
    for cls, base in expected.items():
        assert issubclass(cls, UserInputError), cls
        assert issubclass(cls, base), cls
    assert issubclass(CheckpointNotFoundError, CheckpointError)
    assert issubclass(UnsafeCheckpointError, CheckpointError)


# --------------------------------------------------------------- run_cli
def test_user_error_is_one_line_and_status_1(capsys):
    from cmdyseg.utils.checkpoint import CheckpointError
    main = _raiser(CheckpointError('checkpoint x.pth is bad:\n  really'))
    with pytest.raises(SystemExit) as info:
        run_cli(main, [], prog='tool.py')
    assert info.value.code == 1
    assert capsys.readouterr().err == (
        'tool.py: error: checkpoint x.pth is bad: really\n')
    # in-process form: the status is returned
    assert run_cli(main, [], prog='tool.py', exit=False) == 1
    assert capsys.readouterr().err.count('\n') == 1


def test_innermost_user_error_through_a_builder_re_raise(capsys):
    from cmdyseg.datasets.file_io import DataFileError
    from cmdyseg.utils.checkpoint import CheckpointError
    for inner, want in (
            (CheckpointError('checkpoint c.pth is truncated'),
             'checkpoint c.pth is truncated'),
            (DataFileError('/d/a2d_annotation.txt', 'file does not exist'),
             '/d/a2d_annotation.txt: file does not exist'),
            (ConfigError('model.neck.x: unknown key'),
             'model.neck.x: unknown key')):
        assert run_cli(_mmengine_style(inner), [], 'tool.py',
                       exit=False) == 1
        err = capsys.readouterr().err
        # the library's own message, without the builder's prefix
        assert err == f'tool.py: error: {want}\n'


def test_user_error_below_other_exceptions(capsys):
    from cmdyseg.utils.checkpoint import CheckpointError

    def main(argv):
        try:
            raise CheckpointError('checkpoint deep.pth is truncated')
        except CheckpointError as e:
            # e.g. a dataset's "cannot load sample 3 (...)" wrapper
            raise RuntimeError('cannot load sample 3') from e

    assert run_cli(main, [], 'tool.py', exit=False) == 1
    assert capsys.readouterr().err == (
        'tool.py: error: checkpoint deep.pth is truncated\n')

    # ``raise ... from None`` hides the context on purpose
    def hidden(argv):
        try:
            raise CheckpointError('hidden')
        except CheckpointError:
            raise ZeroDivisionError('a bug') from None

    with pytest.raises(ZeroDivisionError):
        run_cli(hidden, [], 'tool.py', exit=False)


def test_find_user_error_and_message():
    err = UserInputError('x')
    outer = ValueError('y')
    outer.__context__ = err
    assert find_user_error(outer) is err
    assert find_user_error(ValueError('z')) is None
    # a cycle in the chain ends the walk
    a, b = ValueError('a'), ValueError('b')
    a.__context__, b.__context__ = b, a
    assert find_user_error(a) is None
    # a DataLoader worker's error comes back as cls(worker traceback)
    worker = ConfigError(
        'Caught ConfigError in DataLoader worker process 0.\n'
        'Original Traceback (most recent call last):\n'
        '  File "x.py", line 1, in f\n'
        'cmdyseg.utils.errors.ConfigError: bad value in /d/f.txt\n')
    assert error_message(worker) == 'bad value in /d/f.txt'
    assert error_message(UserInputError('')) == 'UserInputError'

    class Missing(UserInputError, KeyError):
        pass

    assert error_message(Missing('no key k')) == 'no key k'


def test_debug_flag_and_env_reraise(monkeypatch, capsys):
    from cmdyseg.utils.checkpoint import CheckpointError
    seen = []

    def main(argv):
        seen.append((list(argv), os.environ.get(DEBUG_ENV)))
        raise CheckpointError('checkpoint x.pth is truncated')

    with pytest.raises(CheckpointError, match='x.pth'):
        run_cli(main, ['a', '--debug', 'b'], 'tool.py', exit=False)
    # the tool never sees --debug; children would inherit CMDYSEG_DEBUG
    assert seen == [(['a', 'b'], '1')]
    assert DEBUG_ENV not in os.environ  # restored
    assert capsys.readouterr().err == ''
    monkeypatch.setenv(DEBUG_ENV, '1')
    with pytest.raises(CheckpointError):
        run_cli(main, [], 'tool.py', exit=False)


def test_bugs_keep_their_traceback_and_results_mean_0(capsys):
    with pytest.raises(ZeroDivisionError):
        run_cli(_raiser(ZeroDivisionError('bug')), [], 'tool.py',
                exit=False)
    assert capsys.readouterr().err == ''
    assert run_cli(lambda argv: {'mIoU': 1.0}, [], exit=False) == 0
    assert run_cli(lambda argv: None, [], exit=False) == 0
    assert run_cli(lambda argv: 3, [], exit=False) == 3
    assert run_cli(lambda argv: True, [], exit=False) == 0


def test_keyboard_interrupt_is_130(capsys):
    assert run_cli(_raiser(KeyboardInterrupt()), [], 'tool.py',
                   exit=False) == 130
    assert capsys.readouterr().err == 'tool.py: interrupted\n'


def _script(tmp_path, body):
    """A tool whose main runs ``body``, its entry point run_cli(main)."""
    path = tmp_path / 'tool.py'
    path.write_text(
        'from cmdyseg.utils.cli import run_cli\n'
        'from cmdyseg.utils.errors import InputNotFoundError\n\n\n'
        'def main(argv):\n' +
        textwrap.indent(textwrap.dedent(body).strip() + '\n', '    ') +
        '\n\nrun_cli(main)\n')
    return str(path)


@pytest.mark.parametrize('mode', ['plain', 'flag', 'env'])
def test_command_line_traceback_only_with_debug(tmp_path, mode):
    script = _script(tmp_path, '''
        raise InputNotFoundError(f'no such file: {argv[0]}')
    ''')
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    args = ['/data/missing.txt']
    if mode == 'flag':
        args.append('--debug')
    elif mode == 'env':
        env[DEBUG_ENV] = '1'
    proc = subprocess.run([sys.executable, script, *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert '/data/missing.txt' in last
    if mode == 'plain':
        assert proc.stderr == 'tool.py: error: no such file: ' \
            '/data/missing.txt\n'
    else:
        assert 'Traceback (most recent call last)' in proc.stderr
        assert last.startswith('cmdyseg.utils.errors.InputNotFoundError')


def test_command_line_bug_keeps_traceback(tmp_path):
    script = _script(tmp_path, '''
        return {}['no such key']
    ''')
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    proc = subprocess.run([sys.executable, script], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert 'Traceback (most recent call last)' in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "KeyError: 'no such key'"


# ----------------------------------------------------- FailedStartCleanup
class _FakeRunner:
    """What FailedStartCleanup uses of mmengine's Runner: ``log_dir`` and
    ``register_hook``; creates what the Runner creates."""

    def __init__(self, work_dir, config_name, stamp='20240101_120000'):
        os.makedirs(work_dir, exist_ok=True)
        self.log_dir = osp.join(work_dir, stamp)
        os.makedirs(osp.join(self.log_dir, 'vis_data'))
        with open(osp.join(self.log_dir, f'{stamp}.log'), 'w') as f:
            f.write('log')
        with open(osp.join(work_dir, config_name), 'w') as f:
            f.write('cfg')
        self.hooks = []

    def register_hook(self, hook, priority='NORMAL'):
        self.hooks.append(hook)

    def first_iteration(self):
        for hook in self.hooks:
            hook.before_test_iter(self, 0, None)


def _fail_run(work_dir, start=False, config='tiny.py', watch=True):
    with pytest.raises(RuntimeError, match='boom'):
        with FailedStartCleanup(work_dir, f'/configs/{config}') as cleanup:
            runner = _FakeRunner(work_dir, config)
            if watch:
                cleanup.watch(runner)
            if start:
                runner.first_iteration()
            raise RuntimeError('boom')
    return cleanup


def test_run_failing_before_start_leaves_nothing(tmp_path):
    work = str(tmp_path / 'work_dirs' / 'tiny')
    cleanup = _fail_run(work)
    assert not cleanup.started
    # the work dir and the folder above it were created by the run
    assert os.listdir(tmp_path) == []


def test_runner_that_fails_while_built_leaves_nothing(tmp_path):
    work = str(tmp_path / 'work')
    _fail_run(work, watch=False)
    assert os.listdir(tmp_path) == []


def test_existing_work_dir_keeps_what_was_there(tmp_path):
    work = tmp_path / 'work'
    (work / '20230101_000000').mkdir(parents=True)  # an earlier run
    (work / 'epoch_1.pth').write_bytes(b'x')
    (work / 'tiny.py').write_text('earlier dump')
    _fail_run(str(work))
    assert sorted(os.listdir(work)) == [
        '20230101_000000', 'epoch_1.pth', 'tiny.py'
    ]


def test_started_or_debug_runs_keep_their_logs(tmp_path, monkeypatch):
    work = str(tmp_path / 'started')
    assert _fail_run(work, start=True).started
    assert sorted(os.listdir(work)) == ['20240101_120000', 'tiny.py']
    monkeypatch.setenv(DEBUG_ENV, '1')
    work = str(tmp_path / 'debug')
    _fail_run(work)
    assert sorted(os.listdir(work)) == ['20240101_120000', 'tiny.py']


def test_successful_run_is_untouched(tmp_path):
    work = str(tmp_path / 'ok')
    with FailedStartCleanup(work, 'tiny.py') as cleanup:
        cleanup.watch(_FakeRunner(work, 'tiny.py'))
    assert sorted(os.listdir(work)) == ['20240101_120000', 'tiny.py']


def test_mark_started_is_an_mmengine_hook(tmp_path):
    from mmengine.hooks import Hook
    work = str(tmp_path / 'w')
    runner = _FakeRunner(work, 'c.py')
    FailedStartCleanup(work).watch(runner)
    (hook, ) = runner.hooks
    assert isinstance(hook, Hook)


# -------------------------------------------------------- pre-flight checks
def test_check_data_roots(tmp_path):
    from mmengine.config import Config
    cfg = Config(
        dict(
            train_dataloader=dict(
                dataset=dict(
                    type='ConcatDataset',
                    datasets=[
                        dict(data_root=str(tmp_path)),
                        dict(
                            type='RepeatDataset',
                            dataset=dict(data_root=str(tmp_path / 'no')))
                    ])),
            val_dataloader=None,
            test_dataloader=dict(
                dataset=dict(data_root='s3://bucket/data'))))
    check_data_roots(cfg, ('test_dataloader', 'val_dataloader'))
    with pytest.raises(InputNotFoundError) as info:
        check_data_roots(cfg)
    msg = str(info.value)
    assert msg.startswith('train_dataloader.dataset.datasets.1.dataset.'
                          'data_root: data folder not found: ')
    assert str(tmp_path / 'no') in msg


def test_load_config_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match='config file not found: .*nope'):
        load_config(str(tmp_path / 'nope.py'))
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(\n')
    with pytest.raises(ConfigError, match='bad.py'):
        load_config(str(bad))
