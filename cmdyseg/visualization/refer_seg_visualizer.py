# Copyright (c) cmdyseg contributors. All rights reserved.
import os.path as osp
from typing import List, Optional, Tuple

import cv2
import numpy as np
from mmengine.visualization import Visualizer

from cmdyseg.fileio import atomic_write
from cmdyseg.registry import VISUALIZERS
from cmdyseg.structures import ReferSegDataSample
from .draw import (PALETTE, Color, draw_text_lines, overlay_mask, text_scale,
                   wrap_text)


def imwrite_atomic(path: str, image: np.ndarray) -> None:
    """Write an RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8 image; the
    format follows the extension. The file appears complete or not at all
    (:func:`cmdyseg.fileio.atomic_write`)."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ext = osp.splitext(path)[1] or '.png'
    try:
        ok, buf = cv2.imencode(ext, image)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f'OpenCV cannot encode an image as {ext!r} for '
                         f'{path}')
    with atomic_write(path, 'wb') as f:
        f.write(buf.tobytes())


@VISUALIZERS.register_module()
class ReferSegVisualizer(Visualizer):
    """Draw a referring-segmentation sample: the frame with its gt and/or
    predicted mask tinted and outlined, under a band with the sentence.

    The drawing itself is done with OpenCV (:mod:`cmdyseg.visualization.
    draw`), not matplotlib, so that writing one image per test sample stays
    cheap; :meth:`add_datasample` still goes through mmengine's
    ``set_image`` / ``show`` / ``add_image`` (vis backends) machinery.

    Layout of :meth:`add_datasample`'s image, ``(band + H, n * W, 3)``:
    a black band with the sentence (and video / frame ids), then one panel
    per drawn mask, side by side: ``GT`` (``gt_color``) left, ``Pred``
    with its score (``pred_color``) right.

    Args:
        name (str): Instance name (mmengine's ManagerMixin).
        image (np.ndarray, optional): Image to start with.
        vis_backends (list[dict], optional): mmengine vis backends.
        save_dir (str, optional): Where the backends save.
        alpha (float): Opacity of the mask tint. Defaults to 0.5.
        gt_color (tuple[int]): RGB of the gt mask. Defaults to green.
        pred_color (tuple[int]): RGB of the predicted mask. Defaults to red.
        contour_thickness (int): Outline width in px (0: none). Defaults
            to 1.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[dict]] = None,
                 save_dir: Optional[str] = None,
                 alpha: float = 0.5,
                 gt_color: Color = PALETTE[1],
                 pred_color: Color = PALETTE[0],
                 contour_thickness: int = 1,
                 **kwargs):
        super().__init__(
            name=name,
            image=image,
            vis_backends=vis_backends,
            save_dir=save_dir,
            **kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}')
        self.alpha = alpha
        self.gt_color = tuple(gt_color)
        self.pred_color = tuple(pred_color)
        self.contour_thickness = contour_thickness

    @staticmethod
    def _mask(data_sample: ReferSegDataSample, fields: Tuple[str, ...],
              shape: Tuple[int, int]) -> Optional[np.ndarray]:
        """The first of ``fields`` present on the sample, as (H, W) bool;
        it must match the image ``shape``."""
        for field in fields:
            if field in data_sample:
                data = getattr(data_sample, field).data
                data = data.cpu().numpy() if hasattr(data, 'cpu') else \
                    np.asarray(data)
                mask = data[0] if data.ndim == 3 else data
                if mask.shape != tuple(shape):
                    raise ValueError(
                        f'{field} has size {mask.shape} but the image is '
                        f'{tuple(shape)}: pass the frame at that size '
                        '(ori_shape for ori_gt_mask / pred_mask)')
                return mask > 0
        return None

    def _header(self, text: str, width: int) -> np.ndarray:
        scale, thickness = text_scale(width)
        lines = wrap_text(text, width - 8, scale, thickness) or ['']
        (_, h), baseline = cv2.getTextSize('Ag', cv2.FONT_HERSHEY_SIMPLEX,
                                           scale, thickness)
        band = np.zeros(
            (len(lines) * (h + baseline + 2) + 6, width, 3), np.uint8)
        return draw_text_lines(band, [(line, (255, 255, 255))
                                      for line in lines],
                               origin=(2, 2), scale=scale,
                               background_alpha=0.0)

    def draw_sample(self,
                    image: np.ndarray,
                    data_sample: Optional[ReferSegDataSample] = None,
                    draw_gt: bool = True,
                    draw_pred: bool = True) -> np.ndarray:
        """Compose the image of :meth:`add_datasample` and return it.

        Args:
            image (np.ndarray): The frame, ``(H, W, 3)`` uint8 RGB, at the
                size of the masks (``ori_shape``).
            data_sample (ReferSegDataSample, optional): Its ``ori_gt_mask``
                (or ``gt_mask``), ``pred_mask``, ``pred_score`` and metainfo
                ``sentence``, ``video_id``, ``frame_id`` are drawn.
            draw_gt (bool): Draw the gt panel (when the sample has a mask).
            draw_pred (bool): Draw the prediction panel (likewise).

        Returns:
            np.ndarray: ``(band + H, n * W, 3)`` uint8 RGB, n = number of
            panels (1 when there is no mask to draw: the bare frame).
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError('image must be (H, W, 3) RGB, got shape '
                             f'{image.shape}')
        image = np.ascontiguousarray(image.astype(np.uint8))
        shape = image.shape[:2]
        panels = []
        header = ''
        if data_sample is not None:
            meta = data_sample.metainfo
            if draw_gt:
                gt = self._mask(data_sample, ('ori_gt_mask', 'gt_mask'),
                                shape)
                if gt is not None:
                    panel = overlay_mask(image, gt, self.gt_color, self.alpha,
                                         self.contour_thickness)
                    panels.append(
                        draw_text_lines(panel, [('GT', self.gt_color)]))
            if draw_pred:
                pred = self._mask(data_sample, ('pred_mask', ), shape)
                if pred is not None:
                    panel = overlay_mask(image, pred, self.pred_color,
                                         self.alpha, self.contour_thickness)
                    label = 'Pred'
                    if 'pred_score' in data_sample:
                        label += f' {float(data_sample.pred_score):.2f}'
                    panels.append(
                        draw_text_lines(panel, [(label, self.pred_color)]))
            ids = [
                str(meta[k]) for k in ('video_id', 'frame_id') if k in meta
            ]
            header = ' / '.join(ids)
            if meta.get('sentence'):
                header = f'{header}: {meta["sentence"]}' if header else \
                    meta['sentence']
        if not panels:
            panels = [image]
        body = np.concatenate(panels, axis=1)
        if not header:
            return body
        return np.concatenate([self._header(header, body.shape[1]), body],
                              axis=0)

    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[ReferSegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0) -> np.ndarray:
        """Draw a sample (see :meth:`draw_sample`); then show it, write it
        to ``out_file`` (atomically, format from the extension) or, without
        ``out_file``, add it to the vis backends under ``name``.

        Returns:
            np.ndarray: The drawn RGB image.
        """
        drawn = self.draw_sample(image, data_sample, draw_gt, draw_pred)
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            imwrite_atomic(out_file, drawn)
        else:
            self.add_image(name, drawn, step)
        return drawn
