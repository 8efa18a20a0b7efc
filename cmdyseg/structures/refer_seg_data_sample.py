# Copyright (c) cmdyseg contributors. All rights reserved.
from mmengine.structures import BaseDataElement, PixelData


class ReferSegDataSample(BaseDataElement):
    """One (clip, sentence, annotated frame) sample and its masks.

    Meta information (``metainfo``), set by the dataset and transforms:

    - ``video_id`` (str), ``frame_id`` (int, 1-based annotated frame),
      ``instance_id`` (str), ``sentence`` (str, as written by the annotator),
    - ``ori_shape`` (H, W): the annotated frame's original size, the size at
      which metrics are computed and predictions are returned,
    - ``img_shape`` (h, w): the size of the frames fed to the network,
    - ``actor_action`` (int): A2D actor-action code (tens = actor, units =
      action), -1 when the dataset has none.

    Data fields:

    - ``gt_mask`` (:obj:`PixelData`, ``data`` (1, h, w) uint8): target at the
      network input size, used by the loss.
    - ``ori_gt_mask`` (:obj:`PixelData`, ``data`` (1, H, W) uint8): target at
      the original size, used by the metric (kept at test time).
    - ``gt_action_map`` (:obj:`PixelData`, ``data`` (1, h, w) uint8): every
      actor's action per pixel at the network input size (0 = no actor,
      255 = not counted), the target of an auxiliary head.
    - ``seg_logits`` (:obj:`PixelData`, ``data`` (1, h, w) float): response
      map R^L upsampled to the input size (set by ``predict``).
    - ``pred_mask`` (:obj:`PixelData`, ``data`` (1, H, W) uint8): predicted
      mask at the original size (set by ``predict``).
    """

    def _pixel_field(name):  # noqa: N805 - helper run at class creation

        def getter(self) -> PixelData:
            return getattr(self, '_' + name)

        def setter(self, value: PixelData) -> None:
            self.set_field(value, '_' + name, dtype=PixelData)

        def deleter(self) -> None:
            delattr(self, '_' + name)

        return property(getter, setter, deleter)

    gt_mask = _pixel_field('gt_mask')
    ori_gt_mask = _pixel_field('ori_gt_mask')
    gt_action_map = _pixel_field('gt_action_map')
    seg_logits = _pixel_field('seg_logits')
    pred_mask = _pixel_field('pred_mask')
    del _pixel_field
