# Copyright (c) cmdyseg contributors. All rights reserved.
"""The heads' decode-head contract: loss / loss_by_feat against eq. 16 by
hand, predict / predict_by_feat against hand-made half-max masks, the
ground truth read from cmdyseg's ``gt_mask`` and mmseg's ``gt_sem_seg``."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import BaseDataElement, PixelData

import cmdyseg.models  # noqa: F401  (registers heads and losses)
from cmdyseg.apis import init_model
from cmdyseg.models.heads import (CMDyConvHead, DCMDyConvHead, DyConvHead,
                                  GroupDyConvHead)
from cmdyseg.structures import ReferSegDataSample

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TINY = osp.join(REPO, 'configs', 'cmdyconv',
                'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
C, D_T, G = 16, 12, 4


def _head(cls=CMDyConvHead, **kwargs):
    torch.manual_seed(0)
    return cls(in_channels=C, text_channels=D_T, groups=G, num_modules=2,
               **kwargs)


def _sample(mask=None, sem_seg=None):
    sample = ReferSegDataSample(metainfo=dict(video_id='v'))
    if mask is not None:
        sample.gt_mask = PixelData(data=torch.as_tensor(mask)[None])
    if sem_seg is not None:
        sample.gt_sem_seg = PixelData(data=torch.as_tensor(sem_seg)[None])
    return sample


def _eq16(logits, target, lam=1.5, valid=None):
    """Eq. 16 written out pixel by pixel."""
    total, count = 0.0, 0
    for idx in range(logits.numel()):
        if valid is not None and not bool(valid.flatten()[idx]):
            continue
        s = 1 / (1 + math.exp(-float(logits.flatten()[idx])))
        y = float(target.flatten()[idx])
        total += -lam * y * math.log(s) - (1 - y) * math.log(1 - s)
        count += 1
    return total / count


def test_loss_by_feat_is_eq16_at_the_label_size():
    head = _head()
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 3, 3, generator=gen)
    masks = (torch.rand(2, 6, 6, generator=gen) > 0.5).to(torch.uint8)
    samples = [_sample(mask=m) for m in masks]
    losses = head.loss_by_feat(logits, samples)
    assert list(losses) == ['loss_mask']
    up = F.interpolate(logits, size=(6, 6), mode='bilinear',
                       align_corners=False)
    assert losses['loss_mask'].item() == pytest.approx(
        _eq16(up, masks), rel=1e-5)
    # align_corners is the head's, and it changes the resize
    corners = _head(align_corners=True).loss_by_feat(logits, samples)
    up_c = F.interpolate(logits, size=(6, 6), mode='bilinear',
                         align_corners=True)
    assert corners['loss_mask'].item() == pytest.approx(
        _eq16(up_c, masks), rel=1e-5)
    assert corners['loss_mask'].item() != pytest.approx(
        losses['loss_mask'].item())


def test_gt_sem_seg_with_ignore_index():
    head = _head()
    logits = torch.tensor([[0.3, -1.0], [2.0, 0.1]]).view(1, 1, 2, 2)
    labels = torch.tensor([[0, 1], [255, 3]])
    loss = head.loss_by_feat(logits, [_sample(sem_seg=labels)])
    target = torch.tensor([[0, 1], [0, 1]])
    valid = torch.tensor([[1, 1], [0, 1]])
    assert loss['loss_mask'].item() == pytest.approx(
        _eq16(logits, target, valid=valid), rel=1e-6)
    # an mmseg data sample (any BaseDataElement with gt_sem_seg) works too
    element = BaseDataElement()
    element.gt_sem_seg = PixelData(data=labels[None])
    assert head.loss_by_feat(logits, [element])['loss_mask'].item() == \
        pytest.approx(loss['loss_mask'].item())
    # gt_mask wins when a sample has both
    both = _sample(mask=torch.ones(2, 2, dtype=torch.uint8), sem_seg=labels)
    assert head.loss_by_feat(logits, [both])['loss_mask'].item() == \
        pytest.approx(_eq16(logits, torch.ones(2, 2)), rel=1e-6)


def test_missing_ground_truth_is_named():
    with pytest.raises(KeyError, match="neither 'gt_mask'.*'gt_sem_seg'"):
        _head().loss_by_feat(torch.zeros(1, 1, 2, 2), [_sample()])


def test_loss_decode_list_and_names():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 1, 4, 4, generator=gen)
    sample = _sample(mask=torch.eye(4, dtype=torch.uint8))
    bce = _head().loss_by_feat(logits, [sample])['loss_mask']
    head = _head(loss_decode=[
        dict(type='WeightedBCELoss', fg_weight=1.5, loss_weight=1.0),
        dict(type='DiceLoss', loss_weight=0.5),
        dict(type='WeightedBCELoss', fg_weight=1.5, loss_weight=2.0),
    ])
    losses = head.loss_by_feat(logits, [sample])
    assert set(losses) == {'loss_mask', 'loss_dice'}
    # two losses with one name are summed
    assert losses['loss_mask'].item() == pytest.approx(3 * bce.item())
    dice = 1 - (2 * (logits.sigmoid().flatten() * torch.eye(4).flatten()
                     ).sum() + 1) / (logits.sigmoid().sum() + 4 + 1)
    assert losses['loss_dice'].item() == pytest.approx(0.5 * dice.item(),
                                                       rel=1e-5)
    with pytest.raises(ValueError, match='at least one loss'):
        _head(loss_decode=[])


def test_loss_is_forward_then_loss_by_feat_and_trains():
    head = _head(DCMDyConvHead)
    gen = torch.Generator().manual_seed(1)
    visual = torch.randn(2, C, 5, 5, generator=gen)
    text = torch.randn(2, D_T, generator=gen)
    samples = [_sample(mask=(torch.rand(10, 10, generator=gen) > 0.6
                             ).to(torch.uint8)) for _ in range(2)]
    losses = head.loss(visual, text, samples, train_cfg=None)
    expected = head.loss_by_feat(head(visual, text), samples)
    assert losses['loss_mask'].item() == pytest.approx(
        expected['loss_mask'].item())
    losses['loss_mask'].backward()
    assert all(p.grad is not None for p in head.parameters()
               if p.requires_grad)
    # a list of feature maps (an mmseg neck's output): visual[in_index]
    listed = head.loss([visual * 0, visual], text, samples)
    assert listed['loss_mask'].item() == pytest.approx(
        losses['loss_mask'].item())


def test_predict_by_feat_half_max_masks_by_hand():
    head = _head()
    # probabilities 0.881, 0.5, 0.269, 0.870: half of the maximum is 0.44
    logits = torch.tensor([[2.0, 0.0], [-1.0, 1.9]]).view(1, 1, 2, 2)
    meta = dict(ori_shape=(2, 2), img_shape=(2, 2))
    (pred, ) = head.predict_by_feat(logits, [meta])
    expected = torch.tensor([[[1, 1], [0, 1]]], dtype=torch.uint8)
    assert torch.equal(pred['pred_mask'], expected)
    assert pred['pred_mask'].dtype == torch.uint8
    probs = torch.sigmoid(torch.tensor([2.0, 0.0, 1.9]))
    assert pred['pred_score'].item() == pytest.approx(probs.mean().item())
    assert torch.equal(pred['seg_logits'], logits[0])
    # absolute threshold
    (pred, ) = head.predict_by_feat(logits, [meta],
                                    dict(mode='absolute', thr=0.6))
    assert torch.equal(pred['pred_mask'],
                       torch.tensor([[[1, 0], [0, 1]]], dtype=torch.uint8))
    # an empty mask scores 0
    (pred, ) = head.predict_by_feat(logits, [meta],
                                    dict(mode='absolute', thr=0.99))
    assert pred['pred_mask'].sum() == 0 and pred['pred_score'].item() == 0
    with pytest.raises(ValueError, match="'half_max' or 'absolute'"):
        head.predict_by_feat(logits, [meta], dict(mode='otsu'))


def test_predict_by_feat_resizes_to_ori_and_img_shape():
    head = _head()
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 1, 4, 4, generator=gen)
    metas = [dict(ori_shape=(9, 13), img_shape=(8, 8)),
             dict(ori_shape=(5, 3))]
    preds = head.predict_by_feat(logits, metas)
    assert preds[0]['pred_mask'].shape == (1, 9, 13)
    assert preds[0]['seg_logits'].shape == (1, 8, 8)
    assert preds[1]['pred_mask'].shape == (1, 5, 3)
    assert preds[1]['seg_logits'].shape == (1, 4, 4)  # no img_shape
    prob = F.interpolate(logits[:1], size=(9, 13), mode='bilinear',
                         align_corners=False).sigmoid()
    assert torch.equal(preds[0]['pred_mask'][0],
                       (prob[0, 0] > 0.5 * prob.max()).to(torch.uint8))
    with pytest.raises(KeyError, match='ori_shape'):
        head.predict_by_feat(logits[:1], [dict(img_shape=(4, 4))])
    with pytest.raises(ValueError, match='2 image metas for 1'):
        head.predict_by_feat(logits[:1], metas)


def test_predict_is_forward_then_predict_by_feat():
    head = _head(GroupDyConvHead).eval()
    gen = torch.Generator().manual_seed(2)
    visual = torch.randn(1, C, 4, 4, generator=gen)
    text = torch.randn(1, D_T, generator=gen)
    meta = dict(ori_shape=(7, 7))
    (pred, ) = head.predict(visual, text, [meta], dict(thr=0.3))
    (ref, ) = head.predict_by_feat(head(visual, text), [meta], dict(thr=0.3))
    assert torch.equal(pred['pred_mask'], ref['pred_mask'])


def test_dyconv_groups_are_not_checked():
    # DyConv has no groups: in_channels=96 with the default groups=64 builds
    head = DyConvHead(in_channels=96, text_channels=D_T)
    assert head(torch.zeros(1, 96, 3, 3), torch.zeros(1, D_T)).shape == \
        (1, 1, 3, 3)
    with pytest.raises(ValueError, match='groups=64 must divide'):
        GroupDyConvHead(in_channels=96, text_channels=D_T)


def test_mmseg_attributes():
    head = _head()
    assert head.align_corners is False
    assert (head.num_classes, head.out_channels) == (2, 1)


@pytest.fixture(scope='module')
def tiny_model():
    torch.manual_seed(0)
    model = init_model(Config.fromfile(TINY))
    model.train()
    return model


def test_segmentor_loss_is_eq16_by_hand(tiny_model):
    gen = torch.Generator().manual_seed(0)
    clips = [torch.randint(0, 256, (3, 8, 64, 64), generator=gen,
                           dtype=torch.uint8) for _ in range(2)]
    samples = []
    for i, sentence in enumerate(['the red circle', 'a blue square']):
        sample = ReferSegDataSample(metainfo=dict(sentence=sentence))
        sample.gt_mask = PixelData(data=(torch.rand(
            1, 64, 64, generator=gen) > 0.7).to(torch.uint8))
        # the tiny model's auxiliary head: every actor's action per pixel
        sample.gt_action_map = PixelData(data=torch.randint(
            0, 8, (1, 64, 64), generator=gen, dtype=torch.uint8))
        samples.append(sample)
    data = tiny_model.data_preprocessor(
        dict(inputs=clips, data_samples=samples), True)
    tiny_model.eval()  # BN statistics fixed: both passes see one model
    with torch.no_grad():
        logits = tiny_model(data['inputs'], samples, mode='tensor')
        losses = tiny_model(data['inputs'], samples, mode='loss')
        visual = tiny_model.encode_video(data['inputs'])
        aux_logits = tiny_model.auxiliary_head(visual)
    assert logits.shape == (2, 1, 32, 32)
    up = F.interpolate(logits, size=(64, 64), mode='bilinear',
                       align_corners=False)
    target = torch.stack([s.gt_mask.data for s in samples])
    assert losses['loss_mask'].item() == pytest.approx(
        _eq16(up, target), rel=1e-5)
    # the auxiliary loss is added under aux., and only it
    assert set(losses) == {'loss_mask', 'loss_dice', 'aux.loss_ce'}
    aux_up = F.interpolate(aux_logits, size=(64, 64), mode='bilinear',
                           align_corners=False)
    labels = torch.stack([s.gt_action_map.data[0] for s in samples]).long()
    assert losses['aux.loss_ce'].item() == pytest.approx(
        tiny_model.auxiliary_head.loss_weight *
        F.cross_entropy(aux_up, labels).item(), rel=1e-5)
    # predict puts the head's results on the samples
    with torch.no_grad():
        for s in samples:
            s.set_metainfo(dict(ori_shape=(30, 40)))
        out = tiny_model(data['inputs'], samples, mode='predict')
    assert out[0].pred_mask.data.shape == (1, 30, 40)
    assert out[0].seg_logits.data.shape == (1, 64, 64)


def test_fg_weight_on_the_segmentor_says_where_it_went():
    cfg = Config.fromfile(TINY)
    cfg.model.fg_weight = 1.5
    with pytest.raises(TypeError, match="loss_decode=dict.*fg_weight=1.5"):
        init_model(cfg)
