# Copyright (c) cmdyseg contributors. All rights reserved.
"""Drawing referring-segmentation results on frames with OpenCV.

All functions take and return RGB ``uint8`` images of shape ``(H, W, 3)``
(:func:`draw_refer_overlay` with a caption band returns a taller one) and
never modify their input. Masks are ``(H, W)`` arrays at the frame's
size (bool or 0/1 integers). Text is drawn with ``cv2.putText`` (Hershey
fonts): characters outside printable ASCII are replaced by ``?``.
"""
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

Color = Tuple[int, int, int]

#: Distinct RGB colours, one per sentence (cycled when there are more).
PALETTE: Tuple[Color, ...] = (
    (230, 25, 75),  # red
    (60, 180, 75),  # green
    (0, 130, 200),  # blue
    (255, 225, 25),  # yellow
    (145, 30, 180),  # purple
    (70, 240, 240),  # cyan
    (245, 130, 48),  # orange
    (240, 50, 230),  # magenta
)

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def color_for(index: int) -> Color:
    """The :data:`PALETTE` colour of sentence ``index``."""
    return PALETTE[index % len(PALETTE)]


def _check_image(image: np.ndarray, name: str = 'image') -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'{name} must be an (H, W, 3) uint8 RGB array, '
                         f'got shape {image.shape} dtype {image.dtype}')
    return image


def _check_mask(mask, shape: Tuple[int, int]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != tuple(shape):
        raise ValueError(f'mask of shape {mask.shape} does not match the '
                         f'image size {tuple(shape)}')
    return mask.astype(bool)


def overlay_mask(image: np.ndarray,
                 mask: np.ndarray,
                 color: Color = PALETTE[0],
                 alpha: float = 0.5,
                 contour_thickness: int = 1) -> np.ndarray:
    """Tint the pixels of ``mask`` with ``color`` and outline the mask.

    ``out = (1 - alpha) * image + alpha * color`` inside the mask; the
    outer contours (``cv2.findContours``) are drawn in ``color`` with
    ``contour_thickness`` px (0: no contour).

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 RGB.
        mask (np.ndarray): ``(H, W)`` or ``(1, H, W)`` bool / 0-1.
        color (tuple[int]): RGB tint.
        alpha (float): Opacity of the tint in [0, 1].
        contour_thickness (int): Contour width in px.

    Returns:
        np.ndarray: A new ``(H, W, 3)`` uint8 image.
    """
    image = _check_image(image)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must be in [0, 1], got {alpha}')
    mask = _check_mask(mask, image.shape[:2])
    out = image.copy()
    if not mask.any():
        return out
    tint = np.asarray(color, dtype=np.float32)
    blended = (1.0 - alpha) * image[mask].astype(np.float32) + alpha * tint
    out[mask] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    if contour_thickness > 0:
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL,
            cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in color),
                         int(contour_thickness))
    return out


def _ascii(text: str) -> str:
    return ''.join(c if 32 <= ord(c) < 127 else '?' for c in text)


def text_scale(width: int) -> Tuple[float, int]:
    """Font scale and stroke thickness that suit an image ``width`` px
    wide (about 60 characters per line at any width)."""
    scale = float(np.clip(width / 1000.0, 0.3, 1.2))
    return scale, max(1, int(round(scale * 1.5)))


def wrap_text(text: str, max_width: int, scale: float,
              thickness: int) -> List[str]:
    """Split ``text`` at spaces into lines at most ``max_width`` px wide
    (a single word wider than that gets a line of its own)."""
    lines: List[str] = []
    current = ''
    for word in _ascii(text).split():
        candidate = f'{current} {word}' if current else word
        (w, _), _ = cv2.getTextSize(candidate, _FONT, scale, thickness)
        if w <= max_width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def _line_height(scale: float, thickness: int) -> Tuple[int, int]:
    (_, h), baseline = cv2.getTextSize('Ag', _FONT, scale, thickness)
    return h, baseline


def draw_text_lines(image: np.ndarray,
                    lines: Sequence[Tuple[str, Color]],
                    origin: Tuple[int, int] = (4, 4),
                    scale: Optional[float] = None,
                    background: Color = (0, 0, 0),
                    background_alpha: float = 0.6) -> np.ndarray:
    """Write text lines, top-left aligned at ``origin`` (x, y), each in its
    own colour, over a translucent box; lines wider than the image are
    wrapped.

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 RGB.
        lines (Sequence[tuple[str, tuple]]): ``(text, rgb_color)`` pairs.
        origin (tuple[int]): Top-left corner of the text box.
        scale (float, optional): Font scale; by default from the width.
        background (tuple[int]): RGB colour of the box.
        background_alpha (float): Opacity of the box.

    Returns:
        np.ndarray: A new image.
    """
    image = _check_image(image)
    out = image.copy()
    H, W = image.shape[:2]
    if scale is None:
        scale, thickness = text_scale(W)
    else:
        thickness = max(1, int(round(scale * 1.5)))
    h, baseline = _line_height(scale, thickness)
    step = h + baseline + 2
    x0, y0 = origin
    wrapped = []
    for text, color in lines:
        for line in wrap_text(text, W - x0 - 4, scale, thickness):
            wrapped.append((line, color))
    if not wrapped:
        return out
    widths = [
        cv2.getTextSize(line, _FONT, scale, thickness)[0][0]
        for line, _ in wrapped
    ]
    x1 = min(W, x0 + max(widths) + 4)
    y1 = min(H, y0 + step * len(wrapped) + 2)
    if x1 > x0 and y1 > y0:
        box = out[y0:y1, x0:x1].astype(np.float32)
        box = (1 - background_alpha) * box + background_alpha * np.asarray(
            background, dtype=np.float32)
        out[y0:y1, x0:x1] = np.clip(np.rint(box), 0, 255).astype(np.uint8)
    for i, (line, color) in enumerate(wrapped):
        y = y0 + 2 + h + i * step
        cv2.putText(out, line, (x0 + 2, y), _FONT, scale,
                    tuple(int(c) for c in color), thickness, cv2.LINE_AA)
    return out


#: Where :func:`draw_refer_overlay` writes the sentences: over the frame
#: (top-left), or in a black band added below / above it.
CAPTION_MODES = ('over', 'below', 'above')


def _caption_lines(
        sentences: Sequence[str], colors: Sequence[Color],
        scores: Optional[Sequence[float]]) -> List[Tuple[str, Color]]:
    lines = []
    for i, (sentence, color) in enumerate(zip(sentences, colors)):
        text = sentence if scores is None else \
            f'{sentence} ({float(scores[i]):.2f})'
        lines.append((text, color))
    return lines


def caption_band_height(width: int,
                        sentences: Sequence[str],
                        with_scores: bool = True) -> int:
    """Height in px of the caption band that :func:`draw_refer_overlay`
    adds (``caption='below'`` / ``'above'``) to a frame ``width`` px wide.

    It depends only on the width and the sentences, not on the scores (a
    score is written ``(0.73)``, and the digits of the font all have the
    same width), so every frame of a video gets the same band; it is even,
    so an even frame size stays even for the video codecs that need it.
    """
    if not sentences:
        return 0
    scale, thickness = text_scale(width)
    h, baseline = _line_height(scale, thickness)
    step = h + baseline + 2
    num_lines = 0
    for sentence in sentences:
        text = f'{sentence} (0.00)' if with_scores else sentence
        # the width draw_text_lines wraps at, from the band's origin (2, 2)
        num_lines += max(1, len(wrap_text(text, width - 6, scale,
                                          thickness)))
    height = step * num_lines + 6
    return height + height % 2


def _caption_band(width: int, height: int,
                  lines: Sequence[Tuple[str, Color]]) -> np.ndarray:
    band = np.zeros((height, width, 3), np.uint8)
    if not lines:
        return band
    return draw_text_lines(
        band, lines, origin=(2, 2), background_alpha=0.0)


def draw_refer_overlay(frame: np.ndarray,
                       masks: Sequence[np.ndarray],
                       sentences: Sequence[str],
                       colors: Optional[Sequence[Color]] = None,
                       scores: Optional[Sequence[float]] = None,
                       alpha: float = 0.5,
                       contour_thickness: int = 1,
                       draw_text: bool = True,
                       caption: str = 'over') -> np.ndarray:
    """One frame with the masks of several sentences, each in its colour,
    and the sentences listed in the same colours.

    With ``caption='over'`` the sentences are written top-left over the
    frame, on a translucent box that hides part of a small frame (on a
    128 x 96 frame two wrapped sentences cover the top rows); with
    ``'below'`` or ``'above'`` they go into a black band of
    :func:`caption_band_height` px added under / over the frame, which
    stays entirely visible.

    Args:
        frame (np.ndarray): ``(H, W, 3)`` uint8 RGB.
        masks (Sequence[np.ndarray]): One ``(H, W)`` mask per sentence.
        sentences (Sequence[str]): The sentences, same order.
        colors (Sequence[tuple], optional): RGB per sentence; defaults to
            :data:`PALETTE`.
        scores (Sequence[float], optional): Appended to each sentence as
            ``(0.73)`` when given.
        alpha (float): Tint opacity.
        contour_thickness (int): Contour width in px.
        draw_text (bool): Write the sentences (no band without them).
        caption (str): One of :data:`CAPTION_MODES`, see above.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8, the frame's size; ``(H + band, W,
        3)`` with a caption band, the frame at rows ``[0, H)`` (``'below'``)
        or ``[band, band + H)`` (``'above'``).
    """
    if caption not in CAPTION_MODES:
        raise ValueError(f'caption must be one of {CAPTION_MODES}, got '
                         f'{caption!r}')
    if len(masks) != len(sentences):
        raise ValueError(f'got {len(masks)} masks for {len(sentences)} '
                         'sentences')
    if colors is None:
        colors = [color_for(i) for i in range(len(sentences))]
    out = _check_image(frame, 'frame').copy()
    for mask, color in zip(masks, colors):
        out = overlay_mask(out, mask, color, alpha, contour_thickness)
    if not (draw_text and sentences):
        return out
    lines = _caption_lines(sentences, colors, scores)
    if caption == 'over':
        return draw_text_lines(out, lines)
    band = _caption_band(
        out.shape[1],
        caption_band_height(out.shape[1], sentences, scores is not None),
        lines)
    parts = [out, band] if caption == 'below' else [band, out]
    return np.concatenate(parts, axis=0)
