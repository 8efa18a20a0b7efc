# Copyright (c) cmdyseg contributors. All rights reserved.
"""cmdyseg.fileio.atomic: what is published, with which permissions, and
what is left behind when writing or swapping fails."""
import os
import os.path as osp
import stat
import subprocess
import sys
import textwrap

import pytest

from cmdyseg.fileio import atomic
from cmdyseg.fileio.atomic import (atomic_dir, atomic_write, current_umask,
                                   replace_dir, temp_dir_for, umask_mode)

ATOMIC_PY = atomic.__file__


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Run under a given umask; the process umask is restored after."""
    saved = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(saved)


def make_tree(root, files):
    os.makedirs(root)
    for name, text in files.items():
        with open(osp.join(root, name), 'w') as f:
            f.write(text)


def read_tree(root):
    out = {}
    for name in sorted(os.listdir(root)):
        with open(osp.join(root, name)) as f:
            out[name] = f.read()
    return out


# ------------------------------------------------------------------ umask
@pytest.mark.parametrize('mask', [0o022, 0o027, 0o002, 0o077])
def test_current_umask_reads_without_changing_it(umask, mask):
    umask(mask)
    assert current_umask() == mask
    assert os.umask(mask) == mask  # still set
    assert umask_mode() == 0o666 & ~mask
    assert umask_mode(0o777) == 0o777 & ~mask


def test_current_umask_without_proc(umask, monkeypatch):
    umask(0o027)

    def no_proc(*args, **kwargs):
        raise OSError('no /proc here')

    monkeypatch.setattr(atomic, 'open', no_proc, raising=False)
    assert current_umask() == 0o027
    assert os.umask(0o027) == 0o027  # put back


# ----------------------------------------------------------- atomic_write
@pytest.mark.parametrize('mask', [0o027, 0o002])
def test_atomic_write_mode_follows_the_umask(tmp_path, umask, mask):
    umask(mask)
    path = tmp_path / 'out.bin'
    with atomic_write(path) as f:
        f.write(b'\x00data')
    assert path.read_bytes() == b'\x00data'
    # what open() would give, not mkstemp's 0o600
    assert mode_of(path) == 0o666 & ~mask
    assert os.listdir(tmp_path) == ['out.bin']


def test_atomic_write_text_replaces_and_creates_folders(tmp_path):
    path = tmp_path / 'a' / 'b' / 'out.json'
    with atomic_write(str(path), 'w', encoding='utf-8') as f:
        f.write('caf\u00e9\n')
    assert path.read_bytes() == 'caf\u00e9\n'.encode('utf-8')
    with atomic_write(path, 'w', encoding='utf-8') as f:
        f.write('new')
    assert path.read_text() == 'new'
    assert os.listdir(path.parent) == ['out.json']


def test_atomic_write_is_invisible_until_the_body_ends(tmp_path):
    path = tmp_path / 'out.txt'
    path.write_text('old')
    with atomic_write(path, 'w') as f:
        f.write('new')
        f.flush()
        # the data is in a temporary file beside the target
        assert path.read_text() == 'old'
        others = [n for n in os.listdir(tmp_path) if n != 'out.txt']
        assert len(others) == 1 and others[0].startswith('.out.txt.')
    assert path.read_text() == 'new'


def test_atomic_write_failure_keeps_target_and_leaves_nothing(tmp_path):
    path = tmp_path / 'out.txt'
    path.write_text('old')
    os.chmod(path, 0o600)
    with pytest.raises(RuntimeError, match='disk full'):
        with atomic_write(path, 'w') as f:
            f.write('half')
            raise RuntimeError('disk full')
    assert path.read_text() == 'old'
    assert mode_of(path) == 0o600
    assert os.listdir(tmp_path) == ['out.txt']
    # a new target is not created at all
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / 'new.txt', 'w') as f:
            f.write('half')
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ['out.txt']


def test_atomic_write_failed_rename_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / 'out.txt'
    path.write_text('old')

    def broken(src, dst):
        raise OSError('rename failed')

    monkeypatch.setattr(atomic.os, 'replace', broken)
    with pytest.raises(OSError, match='rename failed'):
        with atomic_write(path, 'w') as f:
            f.write('new')
    assert path.read_text() == 'old'
    assert os.listdir(tmp_path) == ['out.txt']


def test_atomic_write_fsync(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, 'fsync',
                        lambda fd: synced.append(fd) or real(fd))
    with atomic_write(tmp_path / 'a', 'wb') as f:
        f.write(b'x')
    assert synced == []
    with atomic_write(tmp_path / 'b', 'wb', fsync=True) as f:
        f.write(b'x')
    assert len(synced) == 1


def test_atomic_write_rejects_other_modes(tmp_path):
    for mode in ('r', 'a', 'w+', 'ab', 'x'):
        with pytest.raises(ValueError, match='mode'):
            with atomic_write(tmp_path / 'out', mode):
                pass
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------ replace_dir
def test_replace_dir_without_target(tmp_path, umask):
    umask(0o027)
    final = tmp_path / 'out'
    tmp = temp_dir_for(final)
    assert osp.dirname(tmp) == str(tmp_path)
    assert osp.basename(tmp).startswith('.out.tmp-')
    assert mode_of(tmp) == 0o700  # mkdtemp's
    with open(osp.join(tmp, 'a.txt'), 'w') as f:
        f.write('new')
    replace_dir(tmp, final)
    assert read_tree(final) == {'a.txt': 'new'}
    assert mode_of(final) == 0o777 & ~0o027
    assert os.listdir(tmp_path) == ['out']


def test_replace_dir_refuses_an_existing_target(tmp_path):
    final = str(tmp_path / 'out')
    make_tree(final, {'old.txt': 'old'})
    tmp = temp_dir_for(final)
    make_tree(osp.join(tmp, 'sub'), {'a.txt': 'new'})
    with pytest.raises(FileExistsError, match='overwrite'):
        replace_dir(tmp, final)
    assert read_tree(final) == {'old.txt': 'old'}
    assert osp.isdir(osp.join(tmp, 'sub'))  # left to the caller
    # an empty folder counts as existing too
    os.remove(osp.join(final, 'old.txt'))
    with pytest.raises(FileExistsError):
        replace_dir(tmp, final)


def test_replace_dir_overwrites_and_deletes_the_old_one_last(
        tmp_path, monkeypatch):
    final = str(tmp_path / 'out')
    make_tree(final, {'old.txt': 'old', 'both.txt': 'old'})
    tmp = temp_dir_for(final)
    make_tree(osp.join(tmp, 'x'), {})
    with open(osp.join(tmp, 'both.txt'), 'w') as f:
        f.write('new')
    calls = []
    real_replace, real_rmtree = os.replace, atomic.shutil.rmtree

    def replace(src, dst):
        calls.append(('replace', src, dst))
        return real_replace(src, dst)

    def rmtree(path, *args, **kwargs):
        calls.append(('rmtree', path))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(atomic.os, 'replace', replace)
    monkeypatch.setattr(atomic.shutil, 'rmtree', rmtree)
    replace_dir(tmp, final, overwrite=True)
    assert sorted(os.listdir(final)) == ['both.txt', 'x']
    with open(osp.join(final, 'both.txt')) as f:
        assert f.read() == 'new'
    assert os.listdir(tmp_path) == ['out']
    # old moved aside, new moved in, and only then the old one deleted
    assert [c[0] for c in calls] == ['replace', 'replace', 'rmtree']
    assert calls[0][1] == final and calls[1] == ('replace', tmp, final)
    trash = calls[2][1]
    assert calls[0][2] == osp.join(trash, 'out')
    assert osp.basename(trash).startswith('.out.old-')


def test_replace_dir_failure_restores_the_old_folder(tmp_path, monkeypatch):
    final = str(tmp_path / 'out')
    make_tree(final, {'old.txt': 'old'})
    tmp = temp_dir_for(final)
    with open(osp.join(tmp, 'new.txt'), 'w') as f:
        f.write('new')
    real = os.replace

    def replace(src, dst):
        if src == tmp:  # moving the new folder in fails
            raise OSError('rename failed')
        return real(src, dst)

    monkeypatch.setattr(atomic.os, 'replace', replace)
    with pytest.raises(OSError, match='rename failed'):
        replace_dir(tmp, final, overwrite=True)
    assert read_tree(final) == {'old.txt': 'old'}
    assert read_tree(tmp) == {'new.txt': 'new'}  # left to the caller
    assert sorted(os.listdir(tmp_path)) == sorted(
        ['out', osp.basename(tmp)])  # no trash folder left


def test_replace_dir_needs_a_folder(tmp_path):
    with pytest.raises(NotADirectoryError):
        replace_dir(tmp_path / 'nope', tmp_path / 'out')
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------- atomic_dir
def test_atomic_dir_publishes_or_leaves_nothing(tmp_path):
    final = str(tmp_path / 'deep' / 'out')
    with atomic_dir(final) as tmp:
        assert osp.dirname(tmp) == osp.dirname(final)
        with open(osp.join(tmp, 'a.txt'), 'w') as f:
            f.write('one')
        assert not osp.exists(final)
    assert read_tree(final) == {'a.txt': 'one'}

    with pytest.raises(RuntimeError, match='boom'):
        with atomic_dir(final, overwrite=True) as tmp:
            with open(osp.join(tmp, 'a.txt'), 'w') as f:
                f.write('two')
            raise RuntimeError('boom')
    assert read_tree(final) == {'a.txt': 'one'}
    assert os.listdir(osp.dirname(final)) == ['out']

    with pytest.raises(FileExistsError):
        with atomic_dir(final) as tmp:
            pass
    assert os.listdir(osp.dirname(final)) == ['out']

    with atomic_dir(final, overwrite=True) as tmp:
        with open(osp.join(tmp, 'b.txt'), 'w') as f:
            f.write('three')
    assert read_tree(final) == {'b.txt': 'three'}
    assert os.listdir(osp.dirname(final)) == ['out']


# ------------------------------------------------------- standalone use
def test_loads_from_its_file_with_the_standard_library_only(tmp_path):
    """tools/analysis/benchmark_op_cuda.py loads the file by path on
    machines without mmengine: it must not import anything else."""
    code = textwrap.dedent(f'''
        import importlib.util, sys
        for name in ('cmdyseg', 'mmengine', 'mmcv', 'numpy', 'torch'):
            sys.modules[name] = None  # importing them raises
        before = set(sys.modules)
        spec = importlib.util.spec_from_file_location('atomic', {ATOMIC_PY!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        new = {{m.split('.')[0] for m in set(sys.modules) - before}}
        stdlib = getattr(sys, 'stdlib_module_names', None)  # Python 3.10+
        assert stdlib is None or new <= stdlib, new
        with module.atomic_write(sys.argv[1], 'w') as f:
            f.write('ok')
    ''')
    out = tmp_path / 'out.txt'
    subprocess.run([sys.executable, '-c', code, str(out)], check=True)
    assert out.read_text() == 'ok'
