"""A batch for the tiny configs' models and the gradient check they share
(tests/test_configs.py, tests/test_configs_pretrained.py)."""
import torch
from mmengine.structures import PixelData

from cmdyseg.structures import ReferSegDataSample

# the refiner's last conv starts at zero (identity refinement), so at
# initialisation no gradient reaches its first layers; that they train is
# checked in tests/models/heads/test_dyconv_heads.py
REFINER_FIRST_LAYERS = ('head.refiner.conv1.', 'head.refiner.text_fc.')


def tiny_batch(batch_size=2, frames=8, size=64, ori=(48, 80)):
    """Clips with sentences, masks and action maps, as a data loader gives
    them to the data preprocessor."""
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    sentences = ['the red circle moving left', 'a blue square on the right']
    for i in range(batch_size):
        inputs.append(
            torch.randint(0, 256, (3, frames, size, size), generator=g,
                          dtype=torch.uint8))
        sample = ReferSegDataSample(
            metainfo=dict(
                sentence=sentences[i % 2], ori_shape=ori,
                img_shape=(size, size), video_id=f'v{i}', frame_id=1))
        mask = torch.zeros(1, size, size, dtype=torch.uint8)
        mask[:, 10 + i:30, 20:40 + i] = 1
        sample.gt_mask = PixelData(data=mask)
        # for the tiny models' auxiliary head: every actor's action
        sample.gt_action_map = PixelData(data=mask * (1 + i))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def params_without_grad(model):
    """Trainable parameters that got no (or an all-zero) gradient, except
    the refiner's first layers."""
    return [
        name for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum())
        and not name.startswith(REFINER_FIRST_LAYERS)
    ]
