# Copyright (c) cmdyseg contributors. All rights reserved.
"""Builders of tiny Ref-YouTube-VOS / Ref-DAVIS17 / MeViS layouts (tmp_path).

Each writes the real file formats (JSON schemas, palette PNGs, latin-1
text, COCO RLEs with ``str`` counts) and returns a :class:`Fixture` with
the root and the ground truth it wrote, so that the tests compare the
datasets' masks with arrays computed here, not by the code under test.

Frames are 24 x 32 (H x W); frame ``i`` (0-based position in the video's
listed frames) is flat colour RGB = (code(i), 0, 200), code(i) = 10 + 20 i,
so a decoded frame tells its index and the channel order.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

H, W = 24, 32


def frame_code(i):
    return 10 + 20 * i


def code_to_index(value):
    return int(round((float(value) - 10) / 20))


def frame_indices(imgs):
    """Indices of decoded fixture frames (RGB)."""
    return [code_to_index(img[..., 0].mean()) for img in imgs]


def write_frame(path, i):
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = frame_code(i)
    img[..., 2] = 200
    assert cv2.imwrite(path, img[..., ::-1].copy())  # BGR


def block(obj, t):
    """The fixture's mask of object key ``obj`` in frame ``t``: a block
    that moves with both (H x W uint8 0/1)."""
    m = np.zeros((H, W), np.uint8)
    r0 = (3 * obj + 2 * t) % (H - 8)
    c0 = (5 * obj + 3 * t) % (W - 10)
    m[r0:r0 + 6 + obj % 3, c0:c0 + 8 + t % 2] = 1
    return m


def label_map(objects, t):
    """Palette label of frame ``t`` with ``objects`` (ids, later ones drawn
    over earlier ones, as one palette PNG must)."""
    label = np.zeros((H, W), np.uint8)
    for obj in objects:
        label[block(obj, t) > 0] = obj
    return label


def write_palette_png(path, label):
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = Image.fromarray(label, 'P')
    palette = [0, 0, 0, 236, 95, 103, 249, 145, 87, 250, 200, 99]
    img.putpalette(palette + [0] * (768 - len(palette)))
    img.save(path)


def write_rgb_png(path, label):
    colours = np.array(
        [[0, 0, 0], [236, 95, 103], [249, 145, 87], [250, 200, 99]], np.uint8)
    Image.fromarray(colours[label], 'RGB').save(path)


def write_json(path, obj):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f)


class Fixture:
    """``root`` and the written ground truth: ``labels[(vid, t)]`` (palette
    label maps) or ``masks[(anno_id, t)]`` (MeViS, None when absent)."""

    def __init__(self, root):
        self.root = str(root)
        self.labels: Dict = {}
        self.masks: Dict = {}
        self.frames: Dict[str, List[str]] = {}

    def object_masks(self, vid, obj_ids):
        """(T, H, W) union of ``obj_ids`` over the video's frames."""
        return np.stack([
            np.isin(self.labels[vid, t], obj_ids).astype(np.uint8)
            for t in range(len(self.frames[vid]))
        ])

    def anno_masks(self, vid, anno_ids):
        """(T, H, W) union of MeViS annotations over the video."""
        out = np.zeros((len(self.frames[vid]), H, W), np.uint8)
        for t in range(len(self.frames[vid])):
            for a in anno_ids:
                if self.masks[a, t] is not None:
                    out[t] |= self.masks[a, t]
        return out


# ------------------------------------------------------------ Ref-YouTube-VOS
# vid -> (frame stems, {obj_id: stems where it appears}, expressions)
YTVOS_TRAIN = {
    'vidA': (
        ['00000', '00005', '00010'],
        {
            1: ['00000', '00005', '00010'],
            2: ['00000', '00005'],  # absent from 00010
        },
        {
            '0': ('a penguin  on the left ', '1'),
            '1': ('the black dog', '2'),
        }),
    'vidB': (['00000', '00005'], {
        1: ['00000', '00005']
    }, {
        '0': ('a cat sleeping', '1')
    }),
}
YTVOS_CATEGORIES = {
    ('vidA', 1): 'penguin',
    ('vidA', 2): 'dog',
    ('vidB', 1): 'cat'
}
YTVOS_VALID = {
    'vidV1': (['00000', '00005'], {
        '0': 'a red car',
        '1': 'a person walking'
    }),
    'vidV2': (['00000', '00005', '00010'], {
        '0': 'a bird'
    }),
    'vidT': (['00000'], {
        '0': 'in the test split'
    }),
}


def build_ytvos(root, test_meta=True):
    """Train (with masks and meta.json) and valid (no masks; 'vidT' is
    also in the test meta file and is removed) splits."""
    fx = Fixture(root)
    r = fx.root
    videos = {}
    meta = {}
    for vid, (stems, objects, exps) in YTVOS_TRAIN.items():
        fx.frames[vid] = stems
        for t, stem in enumerate(stems):
            write_frame(
                osp.join(r, 'train', 'JPEGImages', vid, stem + '.jpg'), t)
            present = [o for o, where in objects.items() if stem in where]
            label = label_map(present, t)
            fx.labels[vid, t] = label
            write_palette_png(
                osp.join(r, 'train', 'Annotations', vid, stem + '.png'), label)
        videos[vid] = dict(
            expressions={
                k: dict(exp=text, obj_id=obj)
                for k, (text, obj) in exps.items()
            },
            frames=stems)
        meta[vid] = dict(
            objects={
                str(o): dict(category=YTVOS_CATEGORIES[vid, o], frames=where)
                for o, where in objects.items()
            })
    write_json(
        osp.join(r, 'meta_expressions', 'train', 'meta_expressions.json'),
        dict(videos=videos))
    write_json(osp.join(r, 'train', 'meta.json'), dict(videos=meta))
    valid = {}
    for vid, (stems, exps) in YTVOS_VALID.items():
        fx.frames[vid] = stems
        for t, stem in enumerate(stems):
            write_frame(
                osp.join(r, 'valid', 'JPEGImages', vid, stem + '.jpg'), t)
        valid[vid] = dict(
            expressions={
                k: dict(exp=text)
                for k, text in exps.items()
            },
            frames=stems)
    write_json(
        osp.join(r, 'meta_expressions', 'valid', 'meta_expressions.json'),
        dict(videos=valid))
    if test_meta:
        write_json(
            osp.join(r, 'meta_expressions', 'test', 'meta_expressions.json'),
            dict(videos={'vidT': valid['vidT']}))
    return fx


# ---------------------------------------------------------------- Ref-DAVIS17
DAVIS_VIDEOS = {  # vid -> (number of frames, {obj_id: frames where present})
    'bear': (4, {
        1: [0, 1, 2, 3],
        2: [0, 1, 3]
    }),
    'dogs-scale': (3, {
        1: [0, 1, 2]
    }),
    'trainvid': (2, {
        1: [0, 1]
    }),
}
# the text files; 'dog-scale' is the real files' misspelling of dogs-scale
DAVIS_TEXT = {
    'annot1': ('utf-8', [
        'bear 1 "a brown bear"', 'bear 2 "the small  bear"   ', '',
        'dog-scale 1 "a dog"', 'trainvid 1 "a train thing"'
    ]),
    'annot1_full_video': ('utf-8', [
        'bear 1 "a bear walking"', 'bear 2 "a cub following"',
        'dog-scale 1 "a dog on a scale"'
    ]),
    'annot2': ('latin-1', [
        'bear 1 "a bear near a café"', 'bear 2 "the other bear"',
        'dog-scale 1 "the dog"', ''
    ]),
    # no line for dogs-scale in this set
    'annot2_full_video':
    ('latin-1', ['bear 1 "the bear that walks"', 'bear 2 "the bear behind"']),
}


def write_davis_text(path, encoding, lines):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(('\n'.join(lines) + '\n').encode(encoding))


def build_davis(root):
    fx = Fixture(root)
    r = fx.root
    for vid, (num, objects) in DAVIS_VIDEOS.items():
        stems = [f'{t:05d}' for t in range(num)]
        fx.frames[vid] = stems
        for t, stem in enumerate(stems):
            write_frame(
                osp.join(r, 'JPEGImages', '480p', vid, stem + '.jpg'), t)
            present = [o for o, where in objects.items() if t in where]
            label = label_map(present, t)
            fx.labels[vid, t] = label
            write_palette_png(
                osp.join(r, 'Annotations', '480p', vid, stem + '.png'), label)
    os.makedirs(osp.join(r, 'ImageSets', '2017'))
    with open(osp.join(r, 'ImageSets', '2017', 'val.txt'), 'w') as f:
        f.write('bear\ndogs-scale\n')
    with open(osp.join(r, 'ImageSets', '2017', 'train.txt'), 'w') as f:
        f.write('trainvid\n')
    for name, (encoding, lines) in DAVIS_TEXT.items():
        write_davis_text(
            osp.join(r, 'davis_text_annotations', f'Davis17_{name}.txt'),
            encoding, lines)
    return fx


# ---------------------------------------------------------------------- MeViS
def rle_json(mask: Optional[np.ndarray]):
    """A MeViS mask_dict entry: COCO RLE with ``str`` counts, or None."""
    if mask is None:
        return None
    rle = mask_utils.encode(np.asfortranarray(mask))
    return dict(size=list(rle['size']), counts=rle['counts'].decode('ascii'))


# vid -> (number of frames, {anno_id: frames where present}, expressions)
MEVIS_TRAIN = {
    'm1': (4, {
        10: [0, 1, 3],
        11: [1, 2]
    }, {
        '0': ('the cat moving left', [0], [10]),
        '1': ('two cats  playing', [0, 1], [10, 11]),
    }),
    'm2': (3, {
        20: [0, 1, 2]
    }, {
        '0': ('a fish turning around', [0], [20]),
    }),
}


def build_mevis(root, splits=('train', 'valid')):
    """``train`` (masks: anno 10 absent from frame 2, expression m1/'1'
    refers to two objects; an unused anno 99) and ``valid`` (no
    mask_dict.json)."""
    fx = Fixture(root)
    r = fx.root
    for split in splits:
        videos, mask_dict = {}, {}
        for vid, (num, annos, exps) in MEVIS_TRAIN.items():
            stems = [f'{t:05d}' for t in range(num)]
            fx.frames[vid] = stems
            for t, stem in enumerate(stems):
                write_frame(
                    osp.join(r, split, 'JPEGImages', vid, stem + '.jpg'), t)
            for a, where in annos.items():
                per = []
                for t in range(num):
                    m = block(a % 7, t) if t in where else None
                    fx.masks[a, t] = m
                    per.append(rle_json(m))
                mask_dict[str(a)] = per
            videos[vid] = dict(
                expressions={
                    k: dict(exp=text, obj_id=objs, anno_id=annos_)
                    for k, (text, objs, annos_) in exps.items()
                },
                vid_id=len(videos),
                frames=stems)
        mask_dict['99'] = [rle_json(block(1, 0))]
        write_json(
            osp.join(r, split, 'meta_expressions.json'), dict(videos=videos))
        if split != 'valid':
            write_json(osp.join(r, split, 'mask_dict.json'), mask_dict)
    return fx
