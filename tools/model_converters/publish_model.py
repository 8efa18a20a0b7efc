# Copyright (c) cmdyseg contributors. All rights reserved.
"""Turn a training checkpoint into a release file named by its hash.

    python tools/model_converters/publish_model.py IN.pth OUT_PREFIX

Drops the optimizer, scheduler and message-hub state, keeps ``state_dict``
and ``meta``, and writes ``OUT_PREFIX-<sha256[:8]>.pth`` (OpenMMLab's naming,
which ``tools/test.py`` and ``init_model`` verify). Prints the final path.
"""
import argparse
import hashlib
import io
import os.path as osp

import torch

import cmdyseg  # noqa: F401  (lets torch load mmengine checkpoints)
from cmdyseg.fileio import atomic_write


def publish(src: str, out_prefix: str) -> str:
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint not found: {src}')
    ckpt = torch.load(src, map_location='cpu')
    if 'state_dict' not in ckpt:
        raise KeyError(f'{src} has no "state_dict": not an mmengine '
                       'checkpoint')
    meta = dict(ckpt.get('meta', {}))
    # the message hub and the training history stay behind
    slim = dict(
        state_dict=ckpt['state_dict'],
        meta={k: meta[k]
              for k in ('epoch', 'iter', 'cfg', 'seed', 'dataset_meta',
                        'mmengine_version', 'time') if k in meta})
    # the name holds the hash of the bytes: serialise first, then write
    # under the final name. Saving to a buffer also keeps the bytes (hence
    # the name) reproducible: torch.save to a path stores the file's stem
    # as the archive's folder name.
    buf = io.BytesIO()
    torch.save(slim, buf)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    final = f'{out_prefix}-{sha[:8]}.pth'
    # shared like any file the user writes (umask), not private (0600)
    with atomic_write(final, 'wb') as f:
        f.write(data)
    return final


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='training checkpoint')
    parser.add_argument('out_prefix', help='output path without -hash.pth')
    args = parser.parse_args(argv)
    print(publish(args.src, args.out_prefix))


if __name__ == '__main__':
    main()
