# Copyright (c) cmdyseg contributors. All rights reserved.
"""Turn a training checkpoint into a release file named by its hash.

    python tools/model_converters/publish_model.py IN.pth OUT_PREFIX

Drops the optimizer, scheduler and message-hub state, keeps ``state_dict``
and ``meta``, and writes ``OUT_PREFIX-<sha256[:8]>.pth`` (OpenMMLab's naming,
which ``tools/test.py`` and ``init_model`` verify). Prints the final path.
"""
import argparse
import hashlib
import os
import os.path as osp
import tempfile

import torch

import cmdyseg  # noqa: F401  (lets torch load mmengine checkpoints)


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
    out_dir = osp.dirname(osp.abspath(out_prefix))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.pth', dir=out_dir)
    os.close(fd)
    try:
        torch.save(slim, tmp)
        with open(tmp, 'rb') as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        final = f'{out_prefix}-{sha[:8]}.pth'
        # mkstemp makes the file private (0600); a published checkpoint is
        # meant to be shared: the permissions a plain open() would give
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return final


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='training checkpoint')
    parser.add_argument('out_prefix', help='output path without -hash.pth')
    args = parser.parse_args(argv)
    print(publish(args.src, args.out_prefix))


if __name__ == '__main__':
    main()
