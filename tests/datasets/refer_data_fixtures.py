# Copyright (c) cmdyseg contributors. All rights reserved.
"""Builders of tiny A2D Sentences / J-HMDB Sentences layouts (tmp_path).

Frames are 32 x 48 (H x W) so that a transposed mask has the wrong shape;
frame ``i`` (0-based) of every video is flat colour RGB = (code(i), 0, 200)
with ``code(i) = 10 + 20 * i``, so a decoded frame tells its index (and the
channel order) even after lossy compression.
"""
import csv
import os
import os.path as osp

import cv2
import h5py
import numpy as np
import scipy.io
from load_script import load_script

H, W = 32, 48
EXTRACT_TOOL = osp.join(
    osp.dirname(__file__), '..', '..', 'tools', 'dataset_converters',
    'a2d_extract_frames.py')


def load_extract_tool():
    """tools/dataset_converters/a2d_extract_frames.py as a module."""
    return load_script(EXTRACT_TOOL, 'a2d_extract_frames')


def frame_code(i):
    return 10 + 20 * i


def code_to_index(value):
    return int(round((float(value) - 10) / 20))


def make_frame(i):
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = frame_code(i)
    img[..., 2] = 200
    return img  # RGB


def write_mp4(path, num_frames):
    os.makedirs(osp.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 10,
                             (W, H))
    assert writer.isOpened()
    for i in range(num_frames):
        writer.write(make_frame(i)[..., ::-1].copy())  # BGR
    writer.release()


def block_mask(r0, r1, c0, c1):
    m = np.zeros((H, W), np.uint8)
    m[r0:r1, c0:c1] = 1
    return m


def write_a2d_h5(path, instance_ids, masks, codes, instance_shape=None):
    """Write one frame's file as MATLAB v7.3 does: masks H x W are stored
    transposed (N x W x H, or W x H when there is one)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    inst = np.asarray(instance_ids, np.float64)
    if instance_shape is not None:
        inst = inst.reshape(instance_shape)
    if len(masks) == 1:
        re_mask = masks[0].T.copy()
    else:
        re_mask = np.stack([m.T for m in masks])
    boxes = np.zeros((4, len(masks)), np.float64)
    with h5py.File(path, 'w') as f:
        f['instance'] = inst
        f['reMask'] = re_mask
        f['reBBox'] = boxes
        f['id'] = np.asarray(codes, np.float64).reshape(1, -1)


# masks of the fixture (H x W, deliberately asymmetric)
MASK_A0_F2 = block_mask(2, 10, 30, 44)  # vidA instance 0, frame 2
MASK_A0_F9 = block_mask(20, 30, 1, 7)  # vidA instance 0, frame 9
MASK_A1_F9 = block_mask(5, 9, 5, 20)  # vidA instance 1 (1st row)
MASK_A1_F9_DUP = block_mask(12, 14, 5, 20)  # instance 1 again (2nd row)
MASK_EXTRA = block_mask(0, 32, 46, 48)  # a mask without instance id
MASK_B0_F3 = block_mask(0, 4, 0, 48)  # vidB instance 0, frame 3

A2D_ROWS = [
    ('vidA', '0', '  the man on the   Left '),
    ('vidA', '1', 'bird flying to the left'),
    ('vidA', '1', 'Bird  flying to the LEFT'),  # duplicate after normalising
    ('vidA', '2', 'nobody here'),  # never in a mask file
    ('vidB', '0', 'a ball rolling'),
    ('vidB', '1 (copy)', 'copied instance'),
    ('vidM', '0', 'a missed video'),
]


def build_a2d(root, videos=True):
    """Write the fixture; returns its root."""
    root = str(root)
    os.makedirs(osp.join(root, 'Release'), exist_ok=True)
    with open(osp.join(root, 'a2d_annotation.txt'), 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['video_id', 'instance_id', 'query'])
        w.writerows(A2D_ROWS)
    with open(osp.join(root, 'a2d_missed_videos.txt'), 'w') as f:
        f.write('vidX\nvidM')  # no trailing newline, as the real file
    with open(osp.join(root, 'Release', 'videoset.csv'), 'w') as f:
        f.write('vidA,11,0,1,320,480,10,2,0\n'
                'vidB,35,0,1,320,480,6,1,1\n'
                'vidM,11,0,1,320,480,6,1,0\n')
    mdir = osp.join(root, 'a2d_annotation_with_instances')
    write_a2d_h5(
        osp.join(mdir, 'vidA', '00002.h5'), [0], [MASK_A0_F2], [11],
        instance_shape=(1, 1))
    write_a2d_h5(
        osp.join(mdir, 'vidA', '00009.h5'), [0, 1, 1],
        [MASK_A0_F9, MASK_A1_F9, MASK_A1_F9_DUP, MASK_EXTRA], [11, 46, 46])
    write_a2d_h5(osp.join(mdir, 'vidB', '00003.h5'), [0], [MASK_B0_F3], [54])
    if videos:
        vdir = osp.join(root, 'Release', 'clips320H')
        write_mp4(osp.join(vdir, 'vidA.mp4'), 10)
        write_mp4(osp.join(vdir, 'vidB.mp4'), 6)
    return root


def puppet(num):
    """Masks ``H x W x num`` of J-HMDB: in frame k (0-based) a block at
    rows 3:9, columns 4k:4k+3."""
    masks = np.zeros((H, W, num), np.uint8)
    for k in range(num):
        masks[3:9, 4 * k:4 * k + 3, k] = 1
    return masks


def build_jhmdb(root):
    """Two videos: ``clap1`` (7 png, 5 masks, .mat v5) and ``run2`` (4 png,
    4 masks, v7.3 HDF5 .mat)."""
    root = str(root)
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, 'jhmdb_annotation.txt'), 'w') as f:
        f.write('video_id,query\nclap1,  man  clapping on the left\n'
                'run2,a girl running\n')
    specs = [('clap', 'clap1', 7, 5, False), ('run', 'run2', 4, 4, True)]
    for action, vid, num_png, num_masks, v73 in specs:
        fdir = osp.join(root, 'Rename_Images', action, vid)
        os.makedirs(fdir)
        for i in range(num_png):
            cv2.imwrite(
                osp.join(fdir, f'{i + 1:05d}.png'), make_frame(i)[..., ::-1])
        mdir = osp.join(root, 'puppet_mask', action, vid)
        os.makedirs(mdir)
        masks = puppet(num_masks)
        path = osp.join(mdir, 'puppet_mask.mat')
        if v73:
            with h5py.File(path, 'w') as f:
                f['part_mask'] = masks.transpose(2, 1, 0)  # T x W x H
        else:
            scipy.io.savemat(path, {'part_mask': masks})
    return root
