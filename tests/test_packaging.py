# Copyright (c) cmdyseg contributors. All rights reserved.
"""The wheel must carry every file of the package and import on its own."""
import os
import os.path as osp
import subprocess
import sys
import zipfile

import cmdyseg

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PKG = osp.join(REPO, 'cmdyseg')


def _source_files():
    files = set()
    for root, dirs, names in os.walk(PKG):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        for name in names:
            if not name.endswith(('.pyc', '.pyo')):
                rel = osp.relpath(osp.join(root, name), REPO)
                files.add(rel.replace(os.sep, '/'))
    return files


def test_wheel_ships_every_package_file_and_imports(tmp_path):
    assert cmdyseg.__file__.startswith(PKG)
    subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '-q', '-w',
        str(tmp_path / 'dist'), REPO
    ], check=True)
    wheels = list((tmp_path / 'dist').glob('cmdyseg-*.whl'))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as zf:
        shipped = {n for n in zf.namelist() if n.startswith('cmdyseg/')}
    missing = _source_files() - shipped
    assert not missing, f'files missing from the wheel: {sorted(missing)}'

    target = tmp_path / 'site'
    subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--no-deps', '-q',
        '--target',
        str(target),
        str(wheels[0])
    ], check=True)
    subpackages = sorted(
        osp.relpath(root, REPO).replace(os.sep, '.')
        for root, _, names in os.walk(PKG) if '__init__.py' in names)
    code = ('import importlib, cmdyseg, cmdyseg.registry\n'
            f'assert cmdyseg.__file__.startswith({str(target)!r}), '
            'cmdyseg.__file__\n'
            f'for name in {subpackages!r}:\n'
            '    mod = importlib.import_module(name)\n'
            f'    assert mod.__file__.startswith({str(target)!r}), name\n'
            'print("ok", len(' + repr(subpackages) + '))\n')
    if os.environ.get('CMDYSEG_WITH_OPS', '1') != '0':
        # the compiled CPU kernel is in the wheel and loads from there
        code += ('from cmdyseg.models.layers import _cmdyconv_cpu as ext\n'
                 f'assert ext.__file__.startswith({str(target)!r})\n')
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, '-c', code],
                         cwd=str(tmp_path),
                         env=env,
                         check=True,
                         capture_output=True,
                         text=True)
    assert out.stdout.startswith('ok')
