# Copyright (c) cmdyseg contributors. All rights reserved.
"""A cmdyseg head inside mmsegmentation, as an mmseg user writes it.

The config (below, as the text of a config file) lives in mmseg's scope and
imports cmdyseg's models with ``custom_imports``; the decode head is
``cmdyseg.DCMDyConvHead`` with its own losses. The segmentor is the few
lines an mmseg user adds around a text-queried head: an mmseg backbone, a
sentence vector (here a learned embedding per sentence id) and the head's
own ``loss`` / ``predict``. Data are mmseg ``SegDataSample`` s with
``gt_sem_seg``. mmengine's Runner trains it.

Run it (after ``bash tools/setup_env.sh --dev``, which installs
mmsegmentation 1.2.2)::

    python docs/examples/mmseg_referring_head.py [--iters 60]

It prints the losses and the IoU of the predicted masks on the two kinds
of query. ``tests/test_mmseg_interop.py`` runs it in CI.
"""
import argparse
import os.path as osp
import tempfile

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch.utils.data import Dataset

SIZE, D_T = 32, 8

CONFIG = f'''
custom_imports = dict(imports=['cmdyseg.models'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(
    type='TextQueriedSegmentor',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[127.5] * 3, std=[64.0] * 3,
        size=({SIZE}, {SIZE}), pad_val=0, seg_pad_val=255),
    backbone=dict(
        type='ResNetV1c', depth=18, stem_channels=16, base_channels=16,
        num_stages=2, strides=(1, 2), dilations=(1, 1), out_indices=(0, 1),
        norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(
        type='cmdyseg.DCMDyConvHead', in_channels=32, text_channels={D_T},
        groups=4, num_modules=2, coord_channels=8,
        loss_decode=[
            dict(type='WeightedBCELoss', fg_weight=1.5),
            dict(type='DiceLoss', loss_weight=0.5)]))
'''


class TwoShapes(Dataset):
    """Images with a bright square top-left and a dark disc bottom-right;
    sentence 0 refers to the square, sentence 1 to the disc. mmseg's
    format: ``inputs`` (3, H, W) uint8 and a :class:`SegDataSample` whose
    ``gt_sem_seg`` is 1 on the referred shape, 0 elsewhere, and
    ``ignore_index`` (255) on the top row."""

    def __init__(self, num: int = 8):
        self.items = []
        gen = torch.Generator().manual_seed(0)
        yy, xx = torch.meshgrid(
            torch.arange(SIZE), torch.arange(SIZE), indexing='ij')
        for i in range(num):
            img = torch.randint(60, 100, (3, SIZE, SIZE), generator=gen)
            o = int(torch.randint(2, 6, (1, ), generator=gen))
            square = (yy >= o) & (yy < o + 10) & (xx >= o) & (xx < o + 10)
            disc = (yy - (SIZE - 9))**2 + (xx - (SIZE - 9))**2 < 36
            img[:, square] = 230
            img[:, disc] = 10
            ref = i % 2
            labels = (square if ref == 0 else disc).long()
            labels[0, :] = 255
            self.items.append((img.to(torch.uint8), labels, ref))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        img, labels, ref = self.items[idx]
        sample = SegDataSample(
            metainfo=dict(
                img_shape=(SIZE, SIZE),
                ori_shape=(SIZE, SIZE),
                sentence_id=ref))
        sample.gt_sem_seg = PixelData(data=labels[None])
        return dict(inputs=img, data_samples=sample)


@MODELS.register_module(force=True)
class TextQueriedSegmentor(BaseModel):
    """An mmseg backbone, a sentence embedding and a cmdyseg head."""

    def __init__(self, backbone, decode_head, data_preprocessor,
                 num_sentences=2):
        super().__init__(data_preprocessor=data_preprocessor)
        self.backbone = MODELS.build(backbone)
        self.decode_head = MODELS.build(decode_head)
        self.text = nn.Embedding(num_sentences, D_T)
        self.loss_calls = 0

    def _text(self, data_samples):
        ids = torch.tensor([s.metainfo['sentence_id'] for s in data_samples])
        return self.text(ids.to(self.text.weight.device))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        feats = self.backbone(inputs)  # a tuple: the head takes feats[-1]
        text = self._text(data_samples)
        if mode == 'loss':
            self.loss_calls += 1
            return self.decode_head.loss(feats, text, data_samples, None)
        metas = [s.metainfo for s in data_samples]
        preds = self.decode_head.predict(feats, text, metas, None)
        if mode == 'predict':
            for sample, pred in zip(data_samples, preds):
                sample.pred_sem_seg = PixelData(data=pred['pred_mask'])
            return data_samples
        return torch.stack([p['seg_logits'] for p in preds])


class RecordLosses(Hook):
    """Keeps every iteration's losses (the test checks that they fall)."""

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append({k: float(v) for k, v in outputs.items()})


def load_config(folder: str) -> Config:
    """Write the config as a file and load it as the tools do (which runs
    its ``custom_imports``)."""
    path = osp.join(folder, 'text_queried_seg.py')
    with open(path, 'w') as f:
        f.write(CONFIG)
    return Config.fromfile(path)


def build_runner(work_dir: str, max_iters: int = 60) -> Runner:
    cfg = load_config(work_dir)
    return Runner(
        model=cfg.model,
        work_dir=work_dir,
        default_scope='mmseg',
        train_dataloader=dict(
            # one pass over the data: mmengine's iteration loop pauses 2 s
            # whenever it restarts its dataloader
            dataset=TwoShapes(num=4 * max_iters),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=3e-3)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        custom_hooks=[RecordLosses()],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=10),
            checkpoint=dict(type='CheckpointHook', interval=max_iters + 1)),
        randomness=dict(seed=0),
        experiment_name='mmseg_referring_head')


@torch.no_grad()
def referred_iou(model: nn.Module) -> list:
    """IoU of the predicted mask with the referred shape, one image per
    sentence."""
    model.eval()
    data = [TwoShapes()[i] for i in (0, 1)]
    batch = model.data_preprocessor(
        dict(
            inputs=[d['inputs'] for d in data],
            data_samples=[d['data_samples'] for d in data]))
    out = model(batch['inputs'], batch['data_samples'], mode='predict')
    ious = []
    for sample in out:
        pred = sample.pred_sem_seg.data[0].bool()
        gt = sample.gt_sem_seg.data[0] == 1
        ious.append(float((pred & gt).sum() / (pred | gt).sum()))
    return ious


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        runner = build_runner(work_dir, args.iters)
        runner.train()
        ious = referred_iou(runner.model)
    print('IoU with the referred shape (square, disc): ' +
          ', '.join(f'{iou:.2f}' for iou in ious))


if __name__ == '__main__':
    main()
