# Copyright (c) cmdyseg contributors. All rights reserved.
"""Checking and loading checkpoint files, with errors a user can read.

OpenMMLab names released weights ``<name>-<sha256 prefix>.pth`` (at least
8 hex digits). :func:`check_checkpoint` verifies that prefix for local
files and turns download failures (no network) into a clear error.

Every local checkpoint that mmengine reads (``load_from``, ``resume``,
``init_cfg=dict(type='Pretrained')``, :func:`cmdyseg.apis.init_model`)
goes through ``mmengine.runner.checkpoint.CheckpointLoader``; at
``import cmdyseg`` :func:`install_checkpoint_loader` (called by
:func:`cmdyseg.utils.compat.apply_compat_patches`) replaces its local
loader with :func:`load_from_local`, which loads with
``torch.load(weights_only=True)`` and turns what can go wrong with the file
into a one-line :class:`CheckpointError`:

- a missing file: ``checkpoint file not found: X``;
- a truncated or foreign file: ``checkpoint X is truncated or not a PyTorch
  checkpoint (<reason>)``;
- a file holding a pickled object beyond tensors and mmengine's own types
  (see :mod:`cmdyseg.utils.compat`): it is not loaded, and the message names
  the object that torch refused.

:func:`check_state_dict_fits` compares a checkpoint with a model:
``checkpoint X was saved from a different model: N missing keys (e.g. ...),
M unexpected (e.g. ...)``.
"""
import hashlib
import os
import os.path as osp
import pickle
import re
import struct
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from .errors import UserInputError

_HASH_IN_NAME = re.compile(r'-([0-9a-f]{8,64})\.(pth|pt|ckpt)$')
# torch's UnpicklingError names the refused callable or class like this
_REFUSED_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')
# what torch's zip reader says about a cut or altered archive
_CORRUPT_ARCHIVE = re.compile(
    r'PytorchStreamReader|zip archive|central directory|invalid magic number'
    r'|corrupted|unexpected EOF', re.IGNORECASE)
# how many keys a message lists
_EXAMPLES = 3


class CheckpointError(UserInputError, RuntimeError):
    """A checkpoint cannot be used: missing, corrupt, unsafe, unreachable
    or saved from another model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint file does not exist (also a ``FileNotFoundError``, what
    mmengine's own loader raises)."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint holds a pickled object that could run code; it was not
    loaded (also the ``UnpicklingError`` that torch raises)."""


def sha256sum(path: str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def hash_prefix_in_name(path: str):
    """The sha256 prefix a file name promises, or None."""
    match = _HASH_IN_NAME.search(osp.basename(path))
    return match.group(1) if match else None


def check_checkpoint(path_or_url: str) -> str:
    """Return a local path to a verified checkpoint.

    - A local file must exist; if its name carries a sha256 prefix, the
      file's hash must start with it (a truncated or altered download
      fails here instead of deep inside ``torch.load``).
    - A URL is downloaded into torch's hub cache (``check_hash`` verifies
      the same name convention); without network this raises a
      :class:`CheckpointError` that names the URL and says what to do.
    """
    if re.match(r'^[a-z][a-z0-9+.-]*://', path_or_url):
        from torch.hub import download_url_to_file, get_dir
        cached = osp.join(get_dir(), 'checkpoints',
                          osp.basename(path_or_url.split('?')[0]))
        if not osp.exists(cached):
            os.makedirs(osp.dirname(cached), exist_ok=True)
            try:
                download_url_to_file(path_or_url, cached, progress=False)
            except Exception as e:  # URLError, timeouts, HTTP errors
                raise CheckpointError(
                    f'cannot download checkpoint {path_or_url} ({e}). This '
                    'machine may be offline: download the file elsewhere '
                    'and pass its local path instead.') from e
        path = cached
    else:
        path = path_or_url
        if not osp.isfile(path):
            raise CheckpointNotFoundError(f'checkpoint file not found: {path}')
    expected = hash_prefix_in_name(path)
    if expected is not None:
        actual = sha256sum(path)
        if not actual.startswith(expected):
            raise CheckpointError(
                f'checkpoint {path} is corrupt or not the published file: '
                f'its name promises sha256 {expected}..., the file hashes to '
                f'{actual[:len(expected)]}...')
    return path


# ----------------------------------------------------------------- loading
def _short(text: str, limit: int = 120) -> str:
    """The first sentence of ``text`` on one line, at most ``limit``
    characters (torch's messages go on with advice that does not apply)."""
    text = ' '.join(str(text).split())
    first = re.split(r'(?<=[\w)\]])\. ', text, maxsplit=1)[0].rstrip('.')
    return first if len(first) <= limit else first[:limit - 3] + '...'


def _corrupt(filename: str, reason: str) -> CheckpointError:
    return CheckpointError(f'checkpoint {filename} is truncated or not a '
                           f'PyTorch checkpoint ({reason})')


def _unsafe(filename: str, what: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f'checkpoint {filename} was NOT loaded, for safety: it holds a '
        f'pickled object that could run code ({what}); cmdyseg loads only '
        "tensors, plain containers and mmengine's checkpoint types")


def _weights_only_reason(text: str) -> str:
    """What torch's weights-only unpickler refused, without torch's advice
    around it (which suggests turning the safety off)."""
    match = re.search(r'WeightsUnpickler error:(.*?)(?:\n\s*\n\s*Check the '
                      r'documentation|$)', text, re.DOTALL)
    reason = _short(match.group(1), 160) if match else ''
    if not reason or 'weights_only' in reason:
        return 'an object that is not a tensor'
    return reason


def translate_load_error(filename: str,
                         error: BaseException) -> Optional[CheckpointError]:
    """The :class:`CheckpointError` for what ``torch.load(filename)``
    raised, or None when ``error`` says nothing about the file (a bug, or a
    ``map_location`` that cannot work here)."""
    text = str(error)
    if isinstance(error, pickle.UnpicklingError):
        refused = _REFUSED_GLOBAL.search(text)
        if refused:
            return _unsafe(filename, f'refused global: {refused.group(1)}')
        if 'Weights only load failed' not in text:
            return _corrupt(filename, _short(text) or 'cannot unpickle it')
        reason = _weights_only_reason(text)
        if reason.startswith('Unsupported operand'):
            # an opcode torch.save never writes: a plain pickle, or garbage
            return _corrupt(filename,
                            f'{reason.lower()}: not written by torch.save')
        return _unsafe(filename, reason)
    if isinstance(error, EOFError):
        try:
            empty = osp.getsize(filename) == 0
        except OSError:
            empty = False
        return _corrupt(
            filename, 'the file is empty' if empty else 'the file ends early')
    if isinstance(error, RuntimeError):
        if _CORRUPT_ARCHIVE.search(text):
            return _corrupt(filename, _short(text))
        return None
    if isinstance(error, (KeyError, ValueError, IndexError, struct.error,
                          UnicodeDecodeError, OverflowError)):
        # torch's legacy (pre-zip) reader choking on foreign bytes
        return _corrupt(filename, 'not a torch.save file: '
                        f'{type(error).__name__} {_short(text, 60)}'.strip())
    if isinstance(error, OSError):
        return CheckpointError(
            f'cannot read checkpoint {filename}: '
            f'{error.strerror or _short(text)}')
    return None


def load_checkpoint_file(filename: str, map_location=None):
    """``torch.load(filename, weights_only=True)`` with the errors of a
    missing, truncated, foreign or unsafe file as :class:`CheckpointError`.

    ``weights_only=True`` is passed explicitly, so that no torch default or
    environment variable can make it unpickle arbitrary objects.
    """
    import torch
    filename = osp.expanduser(filename)
    if osp.isdir(filename):
        raise CheckpointError(f'checkpoint {filename} is a folder, not a '
                              'checkpoint file')
    if not osp.isfile(filename):
        raise CheckpointNotFoundError(f'checkpoint file not found: {filename}')
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except Exception as e:
        translated = translate_load_error(filename, e)
        if translated is None:
            raise
        if isinstance(translated, UnsafeCheckpointError):
            # torch's own text suggests loading the file unsafely: keep it
            # out of every message, tracebacks included
            raise translated from None
        raise translated from e


def load_from_local(filename: str, map_location=None):
    """mmengine's ``CheckpointLoader`` scheme for local paths (prefix
    ``''``), installed by :func:`install_checkpoint_loader`.

    The name is mmengine's: ``CheckpointLoader`` logs ``name[10:]``
    ("Loads checkpoint by local backend").
    """
    return load_checkpoint_file(filename, map_location)


def install_checkpoint_loader() -> bool:
    """Make mmengine read every local checkpoint with
    :func:`load_from_local`. Idempotent; returns True when it registered the
    loader."""
    from mmengine.runner.checkpoint import CheckpointLoader
    if CheckpointLoader._schemes.get('') is load_from_local:
        return False
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    return True


def load_checkpoint_any(filename: str, map_location='cpu'):
    """Read a checkpoint (path or URL) through mmengine's
    ``CheckpointLoader``, i.e. with :func:`load_from_local` for files."""
    from mmengine.runner.checkpoint import CheckpointLoader
    install_checkpoint_loader()
    return CheckpointLoader.load_checkpoint(
        filename, map_location=map_location)


# ------------------------------------------------------ model vs checkpoint
def checkpoint_state_dict(checkpoint, filename: str) -> Dict:
    """The state dict of a loaded checkpoint (under ``'state_dict'``, or
    the checkpoint itself), keys without DataParallel's ``module.``,
    metadata kept."""
    state = checkpoint
    if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
        state = checkpoint['state_dict']
    if not isinstance(state, dict):
        raise CheckpointError(
            f'checkpoint {filename} holds no state dict (it holds a '
            f'{type(state).__name__}): not a model checkpoint')
    metadata = getattr(state, '_metadata', None)
    revised = OrderedDict(
        (re.sub(r'^module\.', '', k), v) for k, v in state.items())
    if metadata is not None:
        revised._metadata = metadata
    return revised


def state_dict_mismatch(
        model, state_dict: Dict
) -> Tuple[List[str], List[str], List[Tuple[str, tuple, tuple]]]:
    """``(missing, unexpected, other shape)`` of ``state_dict`` for
    ``model``: the model's keys it lacks (BatchNorm's
    ``num_batches_tracked`` counters excepted, as mmengine does), its keys
    the model lacks, and ``(key, checkpoint shape, model shape)`` of the
    tensors of another shape."""
    own = _unwrap(model).state_dict()
    missing = [
        k for k in own
        if k not in state_dict and not k.endswith('num_batches_tracked')
    ]
    unexpected = [k for k in state_dict if k not in own]
    shapes = []
    for key, value in own.items():
        theirs = state_dict.get(key)
        if theirs is None or not hasattr(theirs, 'shape'):
            continue
        if tuple(theirs.shape) != tuple(value.shape):
            shapes.append((key, tuple(theirs.shape), tuple(value.shape)))
    return missing, unexpected, shapes


def _unwrap(model):
    """The model inside a (Distributed)DataParallel or mmengine wrapper,
    whose keys are the checkpoint's."""
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def _examples(keys: Sequence[str]) -> str:
    more = ', ...' if len(keys) > _EXAMPLES else ''
    return ', '.join(keys[:_EXAMPLES]) + more


def _count(n: int, word: str) -> str:
    return f'{n} {word}' + ('' if n == 1 else 's')


def check_state_dict_fits(model, state_dict: Dict, filename: str) -> None:
    """Raise :class:`CheckpointError` when ``state_dict`` was not saved
    from a model like ``model``: a key missing or extra, or a tensor of
    another shape."""
    missing, unexpected, shapes = state_dict_mismatch(model, state_dict)
    if not (missing or unexpected or shapes):
        return
    msg = (f'checkpoint {filename} was saved from a different model: '
           f'{_count(len(missing), "missing key")}')
    if missing:
        msg += f' (e.g. {_examples(missing)})'
    msg += f', {len(unexpected)} unexpected'
    if unexpected:
        msg += f' (e.g. {_examples(unexpected)})'
    if shapes:
        key, theirs, ours = shapes[0]
        msg += (f', {len(shapes)} of another shape (e.g. {key}: '
                f'{theirs} in the checkpoint, {ours} in the model)')
    raise CheckpointError(msg)


def read_checkpoint_state(filename: str, map_location='cpu') -> Dict:
    """The state dict of the checkpoint ``filename`` (see
    :func:`checkpoint_state_dict`), read with :func:`load_checkpoint_any`:
    a missing, truncated, foreign or unsafe file is a
    :class:`CheckpointError`."""
    return checkpoint_state_dict(
        load_checkpoint_any(filename, map_location), filename)


def check_checkpoint_fits(model, filename: str,
                          map_location='cpu') -> None:
    """Read ``filename`` and raise :class:`CheckpointError` unless it was
    saved from a model like ``model`` (see :func:`check_state_dict_fits`).
    Nothing is loaded into ``model``."""
    check_state_dict_fits(model, read_checkpoint_state(filename, map_location),
                          filename)


def load_model_checkpoint(model, filename: str, map_location='cpu'):
    """Load ``filename`` into ``model`` strictly: a checkpoint of another
    model raises :class:`CheckpointError` (one line) instead of mmengine's
    ``RuntimeError`` with every key. Returns the checkpoint."""
    from mmengine.runner.checkpoint import load_state_dict
    checkpoint = load_checkpoint_any(filename, map_location)
    state = checkpoint_state_dict(checkpoint, filename)
    check_state_dict_fits(model, state, filename)
    load_state_dict(_unwrap(model), state, strict=True)
    return checkpoint
