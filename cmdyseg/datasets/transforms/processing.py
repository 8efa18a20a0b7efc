# Copyright (c) cmdyseg contributors. All rights reserved.
"""Mask resizing and a mask- and sentence-aware horizontal flip.

The clip itself is resized by mmaction2's ``mmaction.Resize`` (or
``mmaction.RandomRescale``); :class:`ResizeMask` then brings the masks to
the clip's new ``img_shape``.
"""
import re
from typing import Sequence

import mmcv
import numpy as np
from mmaction.datasets.transforms import Flip
from mmcv.image.geometric import cv2_interp_codes
from mmcv.transforms import BaseTransform

from cmdyseg.registry import TRANSFORMS
from cmdyseg.utils.errors import InvalidInputError


def str_keys(owner: str, option: str, keys) -> tuple:
    """``keys`` as a tuple of str: one str is one key (``tuple('gt_mask')``
    would be its letters); anything else is a one-line ``ValueError``."""
    if isinstance(keys, str):
        return (keys, )
    try:
        keys = tuple(keys)
    except TypeError:
        keys = None
    if keys is None or not all(isinstance(k, str) for k in keys):
        raise InvalidInputError(
            f'{owner}: {option} must be a str or a sequence of '
            f'str, got {keys!r}')
    return keys


@TRANSFORMS.register_module()
class ResizeMask(BaseTransform):
    """Resize masks to the clip's current ``img_shape`` (nearest).

    Put it after the transform that resized the clip. Resizing is all it
    does, so it refuses to run after a crop (``crop_bbox`` or
    ``crop_quadruple`` in the results), which it could not follow.

    Required keys: ``img_shape`` (h, w) and the ``keys``.
    Modified keys: the ``keys`` (``(h, w)`` uint8).

    Args:
        keys (Sequence[str]): Masks to resize. Defaults to ``('gt_mask',)``;
            ``ori_gt_mask`` stays at the original size on purpose.
        interpolation (str): mmcv interpolation. Defaults to ``'nearest'``.
    """

    def __init__(self,
                 keys: Sequence[str] = ('gt_mask', ),
                 interpolation: str = 'nearest') -> None:
        self.keys = str_keys('ResizeMask', 'keys', keys)
        if interpolation not in cv2_interp_codes:
            raise InvalidInputError('ResizeMask: interpolation must be one of '
                                    f'{tuple(cv2_interp_codes)}, got '
                                    f'{interpolation!r}')
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        for crop_key in ('crop_bbox', 'crop_quadruple'):
            if crop_key in results:
                raise InvalidInputError(
                    f'ResizeMask cannot follow a crop ({crop_key!r} in '
                    'results): only resizes of the whole clip are supported')
        h, w = results['img_shape']
        for key in self.keys:
            mask = results[key]
            if mask.shape[:2] != (h, w):
                results[key] = mmcv.imresize(
                    mask, (w, h), interpolation=self.interpolation)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(keys={self.keys}, '
                f'interpolation={self.interpolation!r})')


# Words whose meaning a horizontal mirror turns into another word. Matched
# as whole words (letters around them break a match, hyphens do not: the
# ``left`` of ``left-hand`` is swapped), case-insensitively; the longest
# spelling is tried first so ``counter-clockwise`` is one word.
FLIP_WORD_PAIRS = (
    ('left', 'right'),
    ('leftmost', 'rightmost'),
    ('leftward', 'rightward'),
    ('leftwards', 'rightwards'),
    ('lefthand', 'righthand'),
    ('lefthanded', 'righthanded'),
    ('leftside', 'rightside'),
    ('clockwise', 'counterclockwise'),
)
# one-way spellings: these all mean "counterclockwise"
_FLIP_ONE_WAY = {
    'counter-clockwise': 'clockwise',
    'anticlockwise': 'clockwise',
    'anti-clockwise': 'clockwise',
}


def _build_flip_table(pairs) -> dict:
    table = dict(_FLIP_ONE_WAY)
    for a, b in pairs:
        table[a.lower()] = b.lower()
        table[b.lower()] = a.lower()
    return table


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swap_left_right(sentence: str, pairs=FLIP_WORD_PAIRS) -> str:
    """Swap the horizontal-direction words of a sentence.

    ``'the man on the Left, leftmost dog'`` becomes
    ``'the man on the Right, rightmost dog'``; the case of each word is
    kept (``LEFT`` -> ``RIGHT``, ``Left`` -> ``Right``). See
    :data:`FLIP_WORD_PAIRS` for the words.
    """
    table = _build_flip_table(pairs)
    alternatives = '|'.join(
        re.escape(w) for w in sorted(table, key=len, reverse=True))
    pattern = re.compile(rf'(?<![A-Za-z])({alternatives})(?![A-Za-z])',
                         re.IGNORECASE)
    return pattern.sub(
        lambda m: _match_case(table[m.group(1).lower()], m.group(1)), sentence)


@TRANSFORMS.register_module()
class ReferFlip(Flip):
    """Horizontal flip of the clip, its masks and its sentence.

    A mirrored clip no longer matches "the man on the left"; so when the
    clip is flipped (with probability ``flip_ratio``), ``gt_mask`` and
    ``ori_gt_mask`` are flipped with it and the horizontal-direction words
    of ``sentence`` are swapped by :func:`swap_left_right` (left <-> right,
    leftmost <-> rightmost, leftward(s), lefthand(ed), leftside, and
    clockwise <-> counterclockwise). The clip flip itself is mmaction2's
    ``Flip`` (which sets ``flip`` and ``flip_direction``).

    Required keys: ``imgs``, ``img_shape``; optional ``gt_mask``,
    ``ori_gt_mask``, ``gt_action_map``, ``sentence``. Modified: those, plus
    ``flip``, ``flip_direction`` (and ``ori_sentence`` keeps the unflipped
    text when the words were swapped).

    Args:
        flip_ratio (float): Probability of flipping. Defaults to 0.5.
        swap_words (bool): Swap the direction words. Defaults to True.
        word_pairs (Sequence[tuple[str, str]]): Words to swap. Defaults to
            :data:`FLIP_WORD_PAIRS`.
        label_swaps (Sequence[tuple[int, int]]): Pairs of labels of
            ``gt_action_map`` that a mirror turns into each other (the
            actions "moving left" and "moving right"), swapped when the clip
            is flipped. Defaults to ().
    """

    def __init__(self,
                 flip_ratio: float = 0.5,
                 swap_words: bool = True,
                 word_pairs: Sequence = FLIP_WORD_PAIRS,
                 label_swaps: Sequence = ()) -> None:
        if isinstance(flip_ratio, bool) or not isinstance(
                flip_ratio, (int, float)) or not 0 <= flip_ratio <= 1:
            raise InvalidInputError(
                'ReferFlip: flip_ratio must be a number in '
                f'[0, 1], got {flip_ratio!r}')
        super().__init__(flip_ratio=flip_ratio, direction='horizontal')
        self.swap_words = swap_words
        try:
            self.word_pairs = tuple(tuple(p) for p in word_pairs)
        except TypeError:
            self.word_pairs = None
        if self.word_pairs is None or not all(
                len(p) == 2 and all(isinstance(w, str) and w for w in p)
                for p in self.word_pairs):
            raise InvalidInputError(
                'ReferFlip: word_pairs must be (word, '
                f'mirrored word) pairs, got {word_pairs!r}')
        try:
            self.label_swaps = tuple(tuple(p) for p in label_swaps)
            flat = [v for p in self.label_swaps for v in p]
            ok = (all(len(p) == 2 for p in self.label_swaps)
                  and len(set(flat)) == len(flat) and all(
                      type(v) is int and 0 <= v < 255 for v in flat))
        except TypeError:
            ok = False
        if not ok:
            raise InvalidInputError(
                'ReferFlip: label_swaps must be (label, mirrored label) '
                'pairs of distinct ints in [0, 255), got '
                f'{label_swaps!r}')
        self._label_lut = np.arange(256, dtype=np.uint8)
        for a, b in self.label_swaps:
            self._label_lut[a], self._label_lut[b] = b, a

    def transform(self, results: dict) -> dict:
        results.setdefault('modality', 'RGB')
        # mmaction flips in place with cv2, which needs contiguous arrays
        # (OpenCVDecode hands out channel-reversed views)
        results['imgs'] = [np.ascontiguousarray(i) for i in results['imgs']]
        results = super().transform(results)
        if not results['flip']:
            return results
        for key in ('gt_mask', 'ori_gt_mask', 'gt_action_map'):
            if key in results:
                results[key] = np.ascontiguousarray(results[key][:, ::-1])
        if 'gt_action_map' in results and self.label_swaps:
            results['gt_action_map'] = self._label_lut[
                results['gt_action_map']]
        if self.swap_words and 'sentence' in results:
            results['ori_sentence'] = results['sentence']
            results['sentence'] = swap_left_right(results['sentence'],
                                                  self.word_pairs)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(flip_ratio={self.flip_ratio}, '
                f'swap_words={self.swap_words}, '
                f'label_swaps={self.label_swaps})')
