# Copyright (c) cmdyseg contributors. All rights reserved.
"""Files and folders that appear complete or not at all.

* :func:`atomic_write` -- write a file under a temporary name in the target's
  folder and rename it over the target when the body has finished;
* :func:`atomic_dir` / :func:`replace_dir` -- fill a temporary folder beside
  the target and swap it in, moving an old target aside first and deleting
  it only once the new one is in place.

A reader (another process, a resumed run, a crash) therefore never sees half
a file or half a folder, and a failed write leaves the previous result
untouched. Renames are atomic only within one file system, which is why the
temporaries always live next to their target.

What is published gets the permissions a plain ``open`` / ``os.mkdir``
would give (``0o666`` / ``0o777`` less the umask), not the private ``0o600``
/ ``0o700`` of :func:`tempfile.mkstemp` / :func:`tempfile.mkdtemp`: results
are meant to be shared like any file the user writes.

This module uses the standard library only, on purpose:
``tools/analysis/benchmark_op_cuda.py`` loads it by its file path on GPU
machines that have neither mmengine nor mmcv, where importing the
``cmdyseg`` package (whose ``__init__`` applies mmengine fixes) would fail.
"""
import contextlib
import errno
import os
import os.path as osp
import shutil
import tempfile
from typing import IO, Iterator, Optional, Union

__all__ = [
    'check_out_dir',
    'atomic_dir', 'atomic_write', 'current_umask', 'replace_dir',
    'temp_dir_for', 'umask_mode'
]

PathLike = Union[str, 'os.PathLike[str]']

_WRITE_MODES = ('w', 'wt', 'wb')


def current_umask() -> int:
    """The process umask, e.g. ``0o022``."""
    # Linux shows the umask in /proc; elsewhere it can only be read by
    # setting it, which briefly applies to every thread of the process --
    # the restrictive 0o077 keeps a file created meanwhile private rather
    # than world-writable.
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def umask_mode(base: int = 0o666) -> int:
    """``base`` less the umask: the mode ``open`` (``0o666``) or
    ``os.mkdir`` (``0o777``) would give a new file or folder."""
    return base & ~current_umask()


@contextlib.contextmanager
def atomic_write(path: PathLike,
                 mode: str = 'wb',
                 *,
                 encoding: Optional[str] = None,
                 newline: Optional[str] = None,
                 fsync: bool = False) -> Iterator[IO]:
    """Open ``path`` for writing so that it is replaced in one step.

    The body writes into a temporary file in ``path``'s folder (created if
    missing). When the body returns, the file is closed, given the mode
    :func:`umask_mode` says and renamed over ``path`` with
    :func:`os.replace`. When the body raises, the temporary file is removed
    and ``path`` is left as it was.

    Example::

        with atomic_write('out/result.json', 'w', encoding='utf-8') as f:
            json.dump(result, f)

    Args:
        path (str | os.PathLike): The file to create or replace.
        mode (str): ``'wb'`` (default), ``'w'`` or ``'wt'``.
        encoding (str, optional): Text encoding, as for :func:`open`.
        newline (str, optional): As for :func:`open` (text mode).
        fsync (bool): Flush the data to the disk before the rename, so that
            after a power loss ``path`` holds the old or the new content,
            never an empty file. Slower; defaults to False.

    Yields:
        file object: The open temporary file.
    """
    if mode not in _WRITE_MODES:
        raise ValueError(f'atomic_write mode must be one of {_WRITE_MODES}, '
                         f'got {mode!r}')
    final = osp.abspath(os.fspath(path))
    folder, name = osp.split(final)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp', dir=folder)
    try:
        try:
            f = os.fdopen(fd, mode, encoding=encoding, newline=newline)
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, umask_mode(0o666))
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def check_out_dir(out_dir: PathLike, overwrite: bool,
                  how_to_overwrite: str = 'overwrite=True') -> str:
    """The absolute path of a folder a run will publish, refused early
    (:class:`FileExistsError`) when it is a file or, without
    ``overwrite``, a non-empty folder; ``how_to_overwrite`` names the flag
    in the message."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise FileExistsError(f'{out_dir} exists and is not a folder')
        if os.listdir(out_dir) and not overwrite:
            raise FileExistsError(f'{out_dir} exists and is not empty; pass '
                                  f'{how_to_overwrite} to replace it')
    return out_dir


def temp_dir_for(final_dir: PathLike) -> str:
    """Create a new empty hidden folder beside ``final_dir`` (on the same
    file system, so that :func:`replace_dir` can rename it there) and
    return its path. The parent folder is created if missing."""
    final = osp.abspath(os.fspath(final_dir))
    parent, name = osp.split(final)
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=f'.{name}.tmp-', dir=parent)


def replace_dir(tmp_dir: PathLike,
                final_dir: PathLike,
                overwrite: bool = False) -> None:
    """Publish the finished folder ``tmp_dir`` as ``final_dir``.

    ``tmp_dir`` must be on the file system of ``final_dir`` (e.g. made by
    :func:`temp_dir_for`); its mode becomes ``umask_mode(0o777)``. Without
    an existing ``final_dir`` it is renamed there. With one (a folder,
    empty or not, or a file) and ``overwrite``, the old one is first moved
    into a hidden folder beside it, ``tmp_dir`` is renamed into place and
    only then is the old one deleted; if the second rename fails the old
    one is moved back. At no time does ``final_dir`` hold a mix of both.

    On failure ``tmp_dir`` is left where it is: the caller removes it (or
    use :func:`atomic_dir`, which does).

    Raises:
        FileExistsError: ``final_dir`` exists and ``overwrite`` is False.
    """
    tmp = osp.abspath(os.fspath(tmp_dir))
    final = osp.abspath(os.fspath(final_dir))
    if not osp.isdir(tmp):
        raise NotADirectoryError(errno.ENOTDIR, 'not a folder', tmp)
    exists = osp.lexists(final)
    if exists and not overwrite:
        raise FileExistsError(errno.EEXIST,
                              'exists; pass overwrite=True to replace it',
                              final)
    os.chmod(tmp, umask_mode(0o777))
    if not exists:
        os.replace(tmp, final)
        return
    parent, name = osp.split(final)
    trash = tempfile.mkdtemp(prefix=f'.{name}.old-', dir=parent)
    old = osp.join(trash, name)
    try:
        os.replace(final, old)
    except BaseException:
        os.rmdir(trash)
        raise
    try:
        os.replace(tmp, final)
    except BaseException:
        os.replace(old, final)
        os.rmdir(trash)
        raise
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final_dir: PathLike, overwrite: bool = False) -> Iterator[str]:
    """Fill a temporary folder and publish it as ``final_dir``.

    Yields the path of a new empty folder beside ``final_dir``
    (:func:`temp_dir_for`). When the body returns, the folder replaces
    ``final_dir`` through :func:`replace_dir`; when the body or the
    replacement fails, the folder is deleted and ``final_dir`` is left as it
    was.

    Example::

        with atomic_dir('data/frames/v1', overwrite=True) as tmp:
            write_frames(tmp)

    Args:
        final_dir (str | os.PathLike): The folder to create or replace.
        overwrite (bool): Replace an existing ``final_dir``; without it an
            existing one raises :class:`FileExistsError` (after the body
            ran: check beforehand to fail early).
    """
    tmp = temp_dir_for(final_dir)
    try:
        yield tmp
        replace_dir(tmp, final_dir, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
