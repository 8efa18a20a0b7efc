# Copyright (c) cmdyseg contributors. All rights reserved.
"""How the command-line tools end: one line for bad input, a traceback
for a bug.

Every tool's entry point is ``run_cli(main)``:

- a :class:`~cmdyseg.utils.errors.UserInputError` anywhere in the
  exception's chain (mmengine and torch re-raise errors as other
  exceptions of the same or another type) is printed as ONE line on stderr,
  ``<tool>: error: <message>``, with the innermost such error's own
  message, and the tool exits with status 1;
- any other exception is a bug: its traceback is shown as usual;
- Ctrl-C ends with ``<tool>: interrupted`` and status 130;
- ``--debug`` anywhere on the command line (removed before the tool's
  argument parser sees it) or ``CMDYSEG_DEBUG=1`` in the environment
  re-raises instead, so that the traceback shows, and keeps what a failed
  run wrote (:class:`FailedStartCleanup`).

:class:`FailedStartCleanup` removes what ``tools/train.py`` and
``tools/test.py`` created for a run (its timestamped log folder, the config
copy, the work dir if the run made it) when the run fails before its first
iteration; :func:`check_data_roots` makes a missing ``data_root`` fail
before anything is created.
"""
import os
import os.path as osp
import re
import shutil
import sys
from typing import Callable, Iterable, List, Optional, Sequence

from .errors import ConfigError, InputNotFoundError, UserInputError

#: Environment variable that turns the one-line errors off (``1``).
DEBUG_ENV = 'CMDYSEG_DEBUG'
#: Command-line flag with the same effect, taken out of ``argv``.
DEBUG_FLAG = '--debug'
#: For the tools' ``--help`` (an argparse ``epilog``: argparse fills in
#: ``%(prog)s``).
DEBUG_HELP = (
    'Bad input (a missing or unusable file, a value that cannot work) ends '
    'the program with status 1 and one line "%(prog)s: error: ..." on '
    'stderr. Add '
    '--debug anywhere on the command line, or set CMDYSEG_DEBUG=1, to see '
    'the traceback instead (and keep what a failed run wrote).')

# torch's DataLoader re-raises a worker's error as ``cls(text)`` where the
# text holds the worker's traceback; its last line is the original error
_WORKER_TRACEBACK = 'Original Traceback (most recent call last):'
# ``module.Class: message`` (``Class: message`` for builtins) on that line
_EXC_LINE = re.compile(r'^(?:(?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*|'
                       r'[A-Za-z_]\w*(?:Error|Exception)): ')


def debug_requested() -> bool:
    """Whether tracebacks and failed runs' files are wanted (``--debug``
    given to :func:`run_cli`, or ``CMDYSEG_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, '').strip().lower() in ('1', 'true',
                                                             'yes', 'on')


def find_user_error(exc: BaseException) -> Optional[UserInputError]:
    """The innermost :class:`UserInputError` in ``exc``'s chain (``exc``
    itself, its ``__cause__``, or its ``__context__`` unless suppressed by
    ``raise ... from None``), or None.

    The innermost one holds the message the library wrote: mmengine, for
    one, re-raises build errors as ``type(e)(f'class `X` in m.py: {e}')``.
    """
    found = None
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, UserInputError):
            found = exc
        if exc.__cause__ is not None:
            exc = exc.__cause__
        elif not exc.__suppress_context__:
            exc = exc.__context__
        else:
            exc = None
    return found


def error_message(exc: BaseException) -> str:
    """``exc``'s message on one line (a DataLoader worker's traceback
    reduced to the error it ends with)."""
    text = str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = str(exc.args[0])  # KeyError's str() is the repr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if _WORKER_TRACEBACK in text and lines:
        lines = [_EXC_LINE.sub('', lines[-1], count=1)]
    return ' '.join(lines) or type(exc).__name__


def _exit_status(result) -> int:
    # ``main`` may return its results (test.py: the metrics): only an int
    # is an exit status
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return 0


def run_cli(main: Callable[[List[str]], object],
            argv: Optional[Sequence[str]] = None,
            prog: Optional[str] = None,
            exit: bool = True) -> int:
    """Run ``main(argv)`` as a command-line program (see the module doc).

    Args:
        main: the tool's ``main``; it receives ``argv`` without
            ``--debug``. An int it returns is the exit status, anything
            else means 0.
        argv: the arguments (default: ``sys.argv[1:]``).
        prog: the name in messages (default: the script's file name).
        exit: call ``sys.exit`` with the status (default), or return it
            (for a ``main(argv)`` that tests call in-process).

    Returns:
        int: the exit status, when ``exit`` is False.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or osp.basename(sys.argv[0]) or 'cmdyseg'
    debug = DEBUG_FLAG in argv
    argv = [a for a in argv if a != DEBUG_FLAG]
    saved = os.environ.get(DEBUG_ENV)
    if debug:
        # children (tools run by tools, torchrun's processes) inherit it
        os.environ[DEBUG_ENV] = '1'
    try:
        try:
            status = _exit_status(main(argv))
        except KeyboardInterrupt:
            if debug_requested():
                raise
            print(f'{prog}: interrupted', file=sys.stderr, flush=True)
            status = 130
        except Exception as e:
            user_error = find_user_error(e)
            if user_error is None or debug_requested():
                raise
            print(f'{prog}: error: {error_message(user_error)}',
                  file=sys.stderr, flush=True)
            status = 1
    finally:
        if debug:
            if saved is None:
                os.environ.pop(DEBUG_ENV, None)
            else:
                os.environ[DEBUG_ENV] = saved
    if exit:
        sys.exit(status)
    return status


# ----------------------------------------------- runs that fail at start
_RUN_FOLDER = re.compile(r'^\d{8}_\d{6}$')  # mmengine's timestamp
_RUN_CONFIG = re.compile(r'^\d{8}_\d{6}\.py$')  # config dump without a name


class FailedStartCleanup:
    """Remove what an mmengine run created when it fails before its first
    iteration, so that a typo leaves no half-made work dir behind.

    Use it around building and running the ``Runner``::

        with FailedStartCleanup(cfg.work_dir, cfg.filename) as cleanup:
            runner = Runner.from_cfg(cfg)
            cleanup.watch(runner)
            runner.train()

    On an exception (``KeyboardInterrupt`` included) before any
    ``before_{train,val,test}_iter`` hook ran, it removes the run's
    timestamped folder (log, ``vis_data``), the config copy mmengine wrote
    into the work dir if it was not there before, and then the work dir and
    the folders above it that this run created, if they are empty. The
    exception is re-raised. A run that started keeps everything, and so
    does every run under ``--debug`` / ``CMDYSEG_DEBUG=1``.

    Args:
        work_dir (str): the run's ``cfg.work_dir``.
        config_file (str, optional): ``cfg.filename``; mmengine dumps the
            config as its base name into the work dir.
    """

    def __init__(self, work_dir: str,
                 config_file: Optional[str] = None) -> None:
        self.work_dir = osp.abspath(work_dir)
        self.config_name = osp.basename(config_file) if config_file else None
        self.started = False
        self.log_dir: Optional[str] = None
        # the topmost folder this run will create (None: it exists)
        self._created_top = None
        path = self.work_dir
        while not osp.exists(path):
            self._created_top = path
            parent = osp.dirname(path)
            if parent == path:
                break
            path = parent
        self._before = set(os.listdir(self.work_dir)) if osp.isdir(
            self.work_dir) else set()

    def watch(self, runner) -> None:
        """Note the runner's log folder and mark the run as started at its
        first iteration (a hook of the highest priority)."""
        from mmengine.hooks import Hook

        owner = self

        class _MarkStarted(Hook):

            def _mark(self, *args, **kwargs):
                owner.started = True

            before_train_iter = before_val_iter = before_test_iter = _mark

        self.log_dir = osp.abspath(runner.log_dir)
        runner.register_hook(_MarkStarted(), priority='HIGHEST')

    def __enter__(self) -> 'FailedStartCleanup':
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and not self.started and \
                not debug_requested():
            try:
                self.cleanup()
            except OSError:  # never hide the error that brought us here
                pass
        return False

    def _created_entries(self) -> Iterable[str]:
        if not osp.isdir(self.work_dir):
            return []
        new = set(os.listdir(self.work_dir)) - self._before
        if self.log_dir is not None and \
                osp.dirname(self.log_dir) == self.work_dir:
            runs = {osp.basename(self.log_dir)} & new
        else:  # the Runner failed while it was built
            runs = {n for n in new if _RUN_FOLDER.match(n)}
        configs = {
            n for n in new
            if n == self.config_name or _RUN_CONFIG.match(n)
        }
        return sorted(runs | configs)

    def cleanup(self) -> None:
        """Remove what this run created (see the class doc)."""
        for name in self._created_entries():
            path = osp.join(self.work_dir, name)
            if osp.isdir(path) and not osp.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
        if self._created_top is None:
            return
        path = self.work_dir
        while True:
            try:
                os.rmdir(path)  # only if empty
            except OSError:
                return
            if path == self._created_top:
                return
            path = osp.dirname(path)


# ------------------------------------------------------ pre-flight checks
def _dataset_roots(dataset, key: str):
    """``(config key, data_root)`` of a dataset config and of the datasets
    it wraps (ConcatDataset, RepeatDataset...)."""
    if not isinstance(dataset, dict):
        return
    root = dataset.get('data_root')
    if isinstance(root, str) and root:
        yield f'{key}.data_root', root
    inner = dataset.get('dataset')
    if isinstance(inner, dict):
        yield from _dataset_roots(inner, f'{key}.dataset')
    for i, item in enumerate(dataset.get('datasets') or []):
        yield from _dataset_roots(item, f'{key}.datasets.{i}')


def check_data_roots(cfg, dataloaders: Sequence[str] = (
        'train_dataloader', 'val_dataloader', 'test_dataloader')) -> None:
    """Raise :class:`~cmdyseg.utils.errors.InputNotFoundError` for the
    first local ``data_root`` of these dataloaders' datasets that is not a
    folder (URLs and remote backends are not checked).

    Datasets would fail on it too, but only once the Runner has created the
    work dir and built the model.
    """
    for name in dataloaders:
        loader = cfg.get(name)
        if not isinstance(loader, dict):
            continue
        for key, root in _dataset_roots(
                loader.get('dataset'), f'{name}.dataset'):
            if '://' in root or osp.isdir(osp.expanduser(root)):
                continue
            raise InputNotFoundError(
                f'{key}: data folder not found: {root} (generate or '
                'download the dataset, or set it with --cfg-options '
                f'{key}=PATH)')


def load_config(path: str):
    """``mmengine.config.Config.fromfile(path)``; a missing file or a
    config that is not valid Python is a
    :class:`~cmdyseg.utils.errors.ConfigError` naming it."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    try:
        return Config.fromfile(path)
    except SyntaxError as e:
        # mmengine parses the text, so the file name is often '<unknown>'
        name = e.filename if e.filename and e.filename[0] != '<' else path
        where = f'{name}:{e.lineno}' if e.lineno else name
        raise ConfigError(f'config {where}: {e.msg}') from e
