# Copyright (c) cmdyseg contributors. All rights reserved.
"""Drawing the synthetic scenes: per-frame label maps, backgrounds and the
colour frames of the video.

A label map (H, W) uint8 holds 0 for the background and ``k + 1`` where
actor ``k`` is visible (later actors occlude earlier ones). It is the
single source of both the masks and the video frames, so the two always
agree. Shapes are drawn without anti-aliasing, so the pixels set to an
actor's value are exactly its mask.
"""
from typing import TYPE_CHECKING, Sequence, Tuple

import cv2
import numpy as np

if TYPE_CHECKING:  # scenes.py imports this module
    from .scenes import ActorTrack

_SUBPIXEL_SHIFT = 4  # cv2 drawing with 1/16 px coordinates


def draw_actor(canvas: np.ndarray, track: 'ActorTrack', t: int,
               value: int) -> None:
    """Fill ``track``'s shape at frame ``t`` into ``canvas`` (H, W) uint8.

    Drawn without anti-aliasing, so the set of pixels set to ``value`` is
    exactly the shape's mask.
    """
    x, y, angle = track.pose(t)
    scale = 1 << _SUBPIXEL_SHIFT
    if track.actor == 'circle':
        centre = (int(round(x * scale)), int(round(y * scale)))
        radius = int(round(0.85 * track.size * scale))
        cv2.circle(canvas, centre, radius, int(value), -1, cv2.LINE_8,
                   _SUBPIXEL_SHIFT)
        return
    n = 4 if track.actor == 'square' else 3
    theta = np.deg2rad(angle + np.arange(n) * 360. / n - 90.)
    pts = np.stack([x + track.size * np.cos(theta),
                    y + track.size * np.sin(theta)], axis=1)
    pts = np.round(pts * scale).astype(np.int32)
    cv2.fillPoly(canvas, [pts], int(value), cv2.LINE_8, _SUBPIXEL_SHIFT)


def render_labels(tracks: Sequence['ActorTrack'], num_frames: int,
                  height: int, width: int) -> np.ndarray:
    """The label maps of a video, (T, H, W) uint8: 0 background, ``k + 1``
    actor ``k`` (drawn in order, so later actors occlude earlier ones)."""
    labels = np.zeros((num_frames, height, width), np.uint8)
    for t in range(num_frames):
        for k, tr in enumerate(tracks):
            draw_actor(labels[t], tr, t, k + 1)
    return labels


def render_background(rng: np.random.Generator, height: int,
                      width: int) -> np.ndarray:
    """A dark, tinted, smoothly shaded background, (H, W, 3) uint8 BGR."""
    level = rng.uniform(25, 70)
    tint = rng.uniform(-12, 12, size=3)
    gx, gy = rng.uniform(-15, 15, size=2)
    xx = np.linspace(-1, 1, width)[None, :, None]
    yy = np.linspace(-1, 1, height)[:, None, None]
    bg = level + tint[None, None, :] + gx * xx + gy * yy
    return np.clip(np.round(bg), 0, 255).astype(np.uint8)


def render_frames(labels: np.ndarray, colours: Sequence[Tuple[int, int,
                                                              int]],
                  background: np.ndarray) -> np.ndarray:
    """The video, (T, H, W, 3) uint8 BGR: actor ``k`` in ``colours[k]``
    (BGR) where ``labels == k + 1``, ``background`` elsewhere."""
    palette = np.array([(0, 0, 0)] + list(colours), dtype=np.uint8)
    out = palette[labels]
    bg = labels == 0
    out[bg] = np.broadcast_to(background, out.shape)[bg]
    return out
