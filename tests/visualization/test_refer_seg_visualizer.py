# Copyright (c) cmdyseg contributors. All rights reserved.
import os

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData

from cmdyseg.registry import VISUALIZERS
from cmdyseg.structures import ReferSegDataSample
from cmdyseg.visualization import (PALETTE, ReferSegVisualizer,
                                   caption_band_height, draw_refer_overlay,
                                   imwrite_atomic, overlay_mask)

H, W = 30, 40


def frame():
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = 100
    img[..., 1] = np.arange(W, dtype=np.uint8)[None] * 2
    img[..., 2] = 50
    return img


def box_mask(y0, y1, x0, x1):
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def test_overlay_mask_tints_inside_outlines_and_leaves_outside():
    img = frame()
    mask = box_mask(5, 20, 10, 30)
    color = (200, 10, 60)
    out = overlay_mask(img, mask, color, alpha=0.25, contour_thickness=1)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(img, frame())  # input untouched
    outside = mask == 0
    np.testing.assert_array_equal(out[outside], img[outside])
    # interior: (1 - alpha) * pixel + alpha * color, rounded
    interior = np.zeros((H, W), bool)
    interior[6:19, 11:29] = True
    expected = np.rint(0.75 * img[interior].astype(np.float64) +
                       0.25 * np.array(color))
    np.testing.assert_array_equal(out[interior], expected)
    # the outline is the box's border, in the full colour
    border = (mask == 1) & ~interior
    assert (out[border] == color).all()

    no_contour = overlay_mask(img, mask, color, 0.25, contour_thickness=0)
    np.testing.assert_array_equal(no_contour[interior], out[interior])
    assert not (no_contour[border] == color).all()
    np.testing.assert_array_equal(
        overlay_mask(img, np.zeros((H, W)), color), img)
    with pytest.raises(ValueError, match='alpha'):
        overlay_mask(img, mask, alpha=1.5)
    with pytest.raises(ValueError, match=r'\(10, 10\)'):
        overlay_mask(img, np.zeros((10, 10)), color)


def test_draw_refer_overlay_colours_each_sentence():
    img = frame()
    masks = [box_mask(18, 28, 2, 12), box_mask(18, 28, 25, 38)]
    out = draw_refer_overlay(
        img, masks, ['left thing', 'right thing'], alpha=1.0,
        draw_text=False)
    assert out.shape == (H, W, 3)
    assert (out[23, 7] == PALETTE[0]).all()
    assert (out[23, 30] == PALETTE[1]).all()
    assert (out[5, 20] == img[5, 20]).all()
    # the text goes top-left, over the frame
    text = draw_refer_overlay(img, masks, ['left thing', 'right thing'],
                              scores=[0.5, 0.25])
    assert (text[:8] != out[:8]).any()
    with pytest.raises(ValueError, match='2 masks for 1'):
        draw_refer_overlay(img, masks, ['one'])


@pytest.mark.parametrize('caption', ['below', 'above'])
def test_caption_band_leaves_a_small_frame_visible(caption):
    """On a 128 x 96 frame the captions go into a band: no pixel of the
    frame is covered by text (over the frame they cover its top rows)."""
    h, w = 96, 128
    img = np.full((h, w, 3), 90, np.uint8)
    masks = [np.zeros((h, w), np.uint8) for _ in range(2)]
    masks[0][60:80, 10:40] = 1
    sentences = ['the red circle on the left of the picture',
                 'a square moving up on the right']
    bare = draw_refer_overlay(img, masks, sentences, draw_text=False)
    band = caption_band_height(w, sentences)
    assert band > 0 and band % 2 == 0
    heights = set()
    for scores in ([0.0, 0.5], [1.0, 0.25], [0.99, 0.07]):
        out = draw_refer_overlay(img, masks, sentences, scores=scores,
                                 caption=caption)
        heights.add(out.shape)
        frame_rows = slice(0, h) if caption == 'below' else slice(band, None)
        band_rows = slice(h, None) if caption == 'below' else slice(0, band)
        # the whole frame, masks included, is visible: 0% under captions
        np.testing.assert_array_equal(out[frame_rows], bare)
        # every sentence is in the band, in its colour (anti-aliased: the
        # text pixels are that colour, dimmed)
        text = out[band_rows].reshape(-1, 3).astype(np.float64)
        text = text[text.max(1) > 80]
        for color in PALETTE[:2]:
            c = np.asarray(color, np.float64)
            cos = text @ c / (np.linalg.norm(text, axis=1) *
                              np.linalg.norm(c))
            assert (cos > 0.995).any()
    # the same band for every score, so every frame of a video has one size
    assert heights == {(h + band, w, 3)}

    over = draw_refer_overlay(img, masks, sentences, scores=[0.5, 0.5])
    assert over.shape == img.shape
    assert (over != bare).any(-1).mean() > 0.15  # why the band exists
    with pytest.raises(ValueError, match=r"caption must be one of \('over'"):
        draw_refer_overlay(img, masks, sentences, caption='side')


def sample_with_masks():
    sample = ReferSegDataSample(
        metainfo=dict(
            video_id='vid', frame_id=7, sentence='the box on the left'))
    sample.ori_gt_mask = PixelData(
        data=torch.from_numpy(box_mask(18, 28, 1, 15)[None]))
    sample.pred_mask = PixelData(
        data=torch.from_numpy(box_mask(10, 25, 20, 35)[None]))
    sample.pred_score = torch.tensor(0.8)
    return sample


def test_visualizer_writes_gt_and_pred_panels(tmp_path):
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        vis = VISUALIZERS.build(
            dict(
                type='ReferSegVisualizer',
                name='test_refer_seg_visualizer',
                alpha=1.0,
                contour_thickness=0))
    assert isinstance(vis, ReferSegVisualizer)
    out_file = tmp_path / 'sub' / 'sample.png'
    drawn = vis.add_datasample(
        'sample', frame(), sample_with_masks(), out_file=str(out_file))
    band = drawn.shape[0] - H
    assert band > 0 and drawn.shape[1:] == (2 * W, 3)
    gt_panel, pred_panel = drawn[band:, :W], drawn[band:, W:]
    assert (gt_panel[23, 8] == vis.gt_color).all()
    assert (gt_panel[20, 30] == frame()[20, 30]).all()  # no pred on the left
    assert (pred_panel[20, 30] == vis.pred_color).all()
    assert (pred_panel[23, 2] == frame()[23, 2]).all()
    # the file is the drawn image (PNG is lossless), and nothing else
    written = cv2.cvtColor(cv2.imread(str(out_file)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(written, drawn)
    assert os.listdir(out_file.parent) == ['sample.png']
    np.testing.assert_array_equal(vis.get_image(), drawn)

    only_pred = vis.draw_sample(frame(), sample_with_masks(), draw_gt=False)
    assert only_pred.shape[1] == W
    bare = vis.draw_sample(frame())
    np.testing.assert_array_equal(bare, frame())
    with pytest.raises(ValueError, match='ori_gt_mask'):
        vis.draw_sample(np.zeros((H + 1, W, 3), np.uint8),
                        sample_with_masks())


def test_imwrite_atomic_leaves_nothing_behind_on_failure(tmp_path):
    grey = np.full((4, 5), 255, np.uint8)
    imwrite_atomic(str(tmp_path / 'm.png'), grey)
    back = cv2.imread(str(tmp_path / 'm.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, grey)
    with pytest.raises(ValueError, match='.nope'):
        imwrite_atomic(str(tmp_path / 'm.nope'), grey)
    assert os.listdir(tmp_path) == ['m.png']
