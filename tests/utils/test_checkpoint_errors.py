# Copyright (c) cmdyseg contributors. All rights reserved.
"""Checkpoint errors a user can read (cmdyseg.utils.checkpoint): the same
one-line CheckpointError whichever way mmengine or cmdyseg loads the
file."""
import os
import os.path as osp
import pickle
import shlex
import shutil

import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import (CheckpointLoader, _load_checkpoint,
                                        load_checkpoint)

from cmdyseg.utils.checkpoint import (CheckpointError, CheckpointNotFoundError,
                                      UnsafeCheckpointError, check_checkpoint,
                                      check_checkpoint_fits,
                                      check_state_dict_fits, load_from_local,
                                      load_model_checkpoint,
                                      translate_load_error)


class _RunsCode:
    """Unpickling it would run a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {shlex.quote(self.marker)}', ))


def _model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
                         nn.Linear(4, 2))


@pytest.fixture
def files(tmp_path):
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=_model().state_dict()), good)
    with open(good, 'rb') as f:
        data = f.read()
    truncated = str(tmp_path / 'truncated.pth')
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])
    text = str(tmp_path / 'notes.pth')
    with open(text, 'w') as f:
        f.write('hello, not a checkpoint\n')
    empty = str(tmp_path / 'empty.pth')
    open(empty, 'wb').close()
    plain = str(tmp_path / 'plain.pkl')
    with open(plain, 'wb') as f:
        pickle.dump(dict(state_dict={}), f, protocol=4)
    marker = str(tmp_path / 'pwned')
    evil = str(tmp_path / 'evil.pth')
    torch.save(
        dict(
            state_dict=_model().state_dict(),
            meta=dict(note=_RunsCode(marker))), evil)
    return dict(good=good, truncated=truncated, text=text, empty=empty,
                plain=plain, evil=evil, marker=marker)


LOADERS = {
    'CheckpointLoader': lambda path: CheckpointLoader.load_checkpoint(
        path, map_location='cpu'),
    # what the Runner's load_from / resume call
    'runner': lambda path: _load_checkpoint(path, map_location='cpu'),
    'mmengine.load_checkpoint': lambda path: load_checkpoint(
        _model(), path, map_location='cpu'),
    'load_model_checkpoint': lambda path: load_model_checkpoint(
        _model(), path),
    'init_cfg Pretrained': lambda path: __import__(
        'cmdyseg.models.backbones.pretrained',
        fromlist=['read_state_dict']).read_state_dict(path),
}


def test_cmdyseg_loader_is_installed_at_import():
    assert CheckpointLoader._get_checkpoint_loader('any.pth') is \
        load_from_local
    assert CheckpointLoader._get_checkpoint_loader('https://x/y.pth') is \
        not load_from_local


@pytest.mark.parametrize('how', sorted(LOADERS))
@pytest.mark.parametrize('case,reason', [
    ('truncated', 'failed finding central directory'),
    ('text', 'not a torch.save file'),
    ('empty', 'the file is empty'),
    ('plain', 'not written by torch.save'),
])
def test_unreadable_file_is_one_line_everywhere(files, how, case, reason):
    path = files[case]
    with pytest.raises(CheckpointError) as info:
        LOADERS[how](path)
    msg = str(info.value)
    assert msg.startswith(f'checkpoint {path} is truncated or not a PyTorch '
                          'checkpoint (')
    assert reason in msg and '\n' not in msg


@pytest.mark.parametrize('how', sorted(LOADERS))
def test_pickled_object_is_refused_and_not_run(files, how):
    with pytest.raises(UnsafeCheckpointError) as info:
        LOADERS[how](files['evil'])
    msg = str(info.value)
    # the file was not loaded: the payload did not run
    assert not osp.exists(files['marker'])
    assert msg.startswith(f'checkpoint {files["evil"]} was NOT loaded, for '
                          'safety: it holds a pickled object that could run '
                          'code (refused global: ')
    assert msg.split('refused global: ')[1].split(')')[0] in (
        'os.system', 'posix.system', 'nt.system')
    # never the advice to turn the safety off, not even in the chain
    assert 'weights_only' not in msg and '\n' not in msg
    assert info.value.__cause__ is None and \
        info.value.__suppress_context__
    # still the UnpicklingError that torch raises
    assert isinstance(info.value, pickle.UnpicklingError)


def test_missing_file_and_folder(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(CheckpointNotFoundError,
                       match=f'^checkpoint file not found: {missing}$'):
        LOADERS['runner'](missing)
    # still the FileNotFoundError of mmengine's own loader
    with pytest.raises(FileNotFoundError):
        LOADERS['CheckpointLoader'](missing)
    with pytest.raises(CheckpointError, match='is a folder'):
        load_from_local(str(tmp_path), None)


def test_good_checkpoint_still_loads(files):
    model = _model()
    ckpt = load_model_checkpoint(model, files['good'])
    assert set(ckpt) == {'state_dict'}
    check_checkpoint_fits(_model(), files['good'])  # no error


def test_other_errors_are_not_translated():
    # a map_location that cannot work here says nothing about the file
    err = RuntimeError('Attempting to deserialize object on a CUDA device '
                       'but torch.cuda.is_available() is False.')
    assert translate_load_error('x.pth', err) is None
    assert translate_load_error('x.pth', TypeError('a bug')) is None


def test_different_model_message(tmp_path):
    model = _model()
    state = model.state_dict()
    other = dict(state)
    for key in ('0.weight', '0.bias', '1.weight', '1.bias'):
        other.pop(key)
    other['head.fc.weight'] = torch.zeros(1)
    other['head.fc.bias'] = torch.zeros(1)
    other['2.weight'] = torch.zeros(3, 4)
    with pytest.raises(CheckpointError) as info:
        check_state_dict_fits(model, other, 'other.pth')
    assert str(info.value) == (
        'checkpoint other.pth was saved from a different model: 4 missing '
        'keys (e.g. 0.weight, 0.bias, 1.weight, ...), 2 unexpected (e.g. '
        'head.fc.weight, head.fc.bias), 1 of another shape (e.g. 2.weight: '
        '(3, 4) in the checkpoint, (2, 4) in the model)')
    # DataParallel's prefix and BatchNorm's counter do not count
    saved = {f'module.{k}': v for k, v in state.items()
             if not k.endswith('num_batches_tracked')}
    path = str(tmp_path / 'dp.pth')
    torch.save(dict(state_dict=saved), path)
    load_model_checkpoint(_model(), path)
    one = dict(state)
    one.pop('2.bias')
    with pytest.raises(CheckpointError,
                       match=r': 1 missing key \(e.g. 2.bias\), 0 '
                       r'unexpected$'):
        check_state_dict_fits(model, one, 'one.pth')


def test_not_a_state_dict(tmp_path):
    path = str(tmp_path / 'list.pth')
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match='holds no state dict'):
        load_model_checkpoint(_model(), path)


def test_init_model_refuses_another_model(tmp_path):
    from cmdyseg.apis import init_model
    root = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'cmdyconv')
    other = init_model(
        osp.join(root, 'dyconv_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py'))
    path = str(tmp_path / 'dyconv.pth')
    torch.save(dict(state_dict=other.state_dict()), path)
    with pytest.raises(CheckpointError) as info:
        init_model(
            osp.join(
                root,
                'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py'),
            path)
    msg = str(info.value)
    assert msg.startswith(f'checkpoint {path} was saved from a different '
                          'model: ')
    assert 'missing keys (e.g. ' in msg and '\n' not in msg


def test_check_checkpoint_keeps_its_checks(files, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    wrong = str(tmp_path / 'tiny-deadbeef.pth')
    shutil.copy(files['good'], wrong)
    with pytest.raises(CheckpointError, match='promises sha256 deadbeef'):
        check_checkpoint(wrong)
    with pytest.raises(CheckpointNotFoundError, match='not found'):
        check_checkpoint(str(tmp_path / 'nope.pth'))
    with pytest.raises(CheckpointError, match='offline'):
        check_checkpoint('http://127.0.0.1:9/none-12345678.pth')
