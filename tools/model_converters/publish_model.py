# Copyright (c) cmdyseg contributors. All rights reserved.
"""Turn a training checkpoint into a release file named by its hash.

    python tools/model_converters/publish_model.py IN.pth OUT_PREFIX [--debug]

Drops the optimizer, scheduler and message-hub state, keeps ``state_dict``
and ``meta``, and writes ``OUT_PREFIX-<sha256[:8]>.pth`` (OpenMMLab's naming,
which ``tools/test.py`` and ``init_model`` verify). Prints the final path.
A missing, truncated or unsafe IN.pth ends with one line and status 1
(``--debug`` or ``CMDYSEG_DEBUG=1``: the traceback).
"""
import argparse
import hashlib
import io

import torch

from cmdyseg.fileio import atomic_write
# importing cmdyseg lets torch load mmengine checkpoints (cmdyseg.utils.compat)
from cmdyseg.utils.checkpoint import CheckpointError, load_checkpoint_file
from cmdyseg.utils.cli import DEBUG_HELP, run_cli


def publish(src: str, out_prefix: str) -> str:
    # missing, truncated, unsafe: CheckpointError (a FileNotFoundError
    # for a missing file)
    ckpt = load_checkpoint_file(src, map_location='cpu')
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise CheckpointError(f'{src} has no "state_dict": not an mmengine '
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
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], epilog=DEBUG_HELP)
    parser.add_argument('src', help='training checkpoint')
    parser.add_argument('out_prefix', help='output path without -hash.pth')
    args = parser.parse_args(argv)
    print(publish(args.src, args.out_prefix))


if __name__ == '__main__':
    run_cli(main, prog='publish_model.py')
