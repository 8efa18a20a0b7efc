# Copyright (c) cmdyseg contributors. All rights reserved.
from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from cmdyseg.registry import MODELS


@MODELS.register_module()
class ReferSegDataPreprocessor(BaseDataPreprocessor):
    """Stack, move and normalise the clips of a batch.

    The pipeline (``PackReferSegInputs``) gives one uint8 RGB clip
    ``(3, T, H, W)`` per sample; this returns ``inputs`` as a float tensor
    ``(B, 3, T, H, W)`` computed as ``(clip - mean) / std`` per channel, on
    the model's device, and passes the data samples through unchanged.

    Args:
        mean (Sequence[float]): Per-channel mean, RGB, in the 0-255 range.
            Defaults to ImageNet's (what mmaction2's I3D-ResNet expects).
            Use ``(127.5,) * 3`` with ``std=(127.5,) * 3`` for DeepMind's
            Inception I3D, which expects values in [-1, 1].
        std (Sequence[float]): Per-channel standard deviation, RGB.
        channels_last (bool): Return the batch in ``channels_last_3d``
            memory format (can speed up 3-D convolutions on some devices).
    """

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 channels_last: bool = False):
        super().__init__()
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f'mean and std need 3 values (RGB), got '
                             f'mean={mean}, std={std}')
        if any(s <= 0 for s in std):
            raise ValueError(f'std must be positive, got {std}')
        self.register_buffer(
            'mean', torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1),
            persistent=False)
        self.register_buffer(
            'std', torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1),
            persistent=False)
        self.channels_last = channels_last

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            shapes = {tuple(x.shape) for x in inputs}
            if len(shapes) != 1:
                raise ValueError(
                    'all clips of a batch must have the same (3, T, H, W) '
                    f'shape; got {sorted(shapes)} -- resize them to a fixed '
                    'size in the pipeline')
            inputs = torch.stack(list(inputs))
        if inputs.dim() != 5 or inputs.shape[1] != 3:
            raise ValueError('expected clips of shape (B, 3, T, H, W), got '
                             f'{tuple(inputs.shape)}')
        inputs = (inputs.float() - self.mean) / self.std
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last_3d)
        return dict(inputs=inputs, data_samples=data.get('data_samples'))


def stack_masks(data_samples: Sequence, field: str = 'gt_mask',
                dtype: Optional[torch.dtype] = torch.float32) -> torch.Tensor:
    """Stack ``data_sample.<field>.data`` (1, H, W) into (B, 1, H, W)."""
    masks = []
    for i, sample in enumerate(data_samples):
        if field not in sample:
            video_id = sample.metainfo.get('video_id')
            raise KeyError(f'data sample {i} (video {video_id}) has no '
                           f'{field!r}')
        masks.append(getattr(sample, field).data)
    return torch.stack(masks).to(dtype)
