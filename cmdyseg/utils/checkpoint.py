# Copyright (c) cmdyseg contributors. All rights reserved.
"""Checking checkpoint files before they are loaded.

OpenMMLab names released weights ``<name>-<sha256 prefix>.pth`` (at least
8 hex digits). :func:`check_checkpoint` verifies that prefix for local
files and turns download failures (no network) into a clear error.
"""
import hashlib
import os
import os.path as osp
import re

_HASH_IN_NAME = re.compile(r'-([0-9a-f]{8,64})\.(pth|pt|ckpt)$')


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: missing, corrupt or unreachable."""


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
            raise CheckpointError(f'checkpoint file not found: {path}')
    expected = hash_prefix_in_name(path)
    if expected is not None:
        actual = sha256sum(path)
        if not actual.startswith(expected):
            raise CheckpointError(
                f'checkpoint {path} is corrupt or not the published file: '
                f'its name promises sha256 {expected}..., the file hashes to '
                f'{actual[:len(expected)]}...')
    return path
