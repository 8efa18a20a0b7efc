# Copyright (c) cmdyseg contributors. All rights reserved.
"""demo/inference.py, run in-process through its main(argv)."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from load_script import load_script
from PIL import Image

from cmdyseg.apis import inference_model, init_model
from cmdyseg.visualization import caption_band_height

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'demo', 'inference.py')
CONFIG = osp.join(
    REPO, 'configs', 'cmdyconv',
    'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
T, H, W = 4, 46, 62
SENTENCES = ['the red circle', 'a square on the right']


@pytest.fixture(scope='module')
def demo():
    return load_script(DEMO, 'inference_demo')


@pytest.fixture(scope='module')
def assets(tmp_path_factory):
    """A short mp4 (odd size, 12 fps), a checkpoint of a random model and
    that model (built by init_model from the checkpoint)."""
    root = tmp_path_factory.mktemp('demo_assets')
    video = str(root / 'clip.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 12,
                             (W, H))
    rng = np.random.default_rng(0)
    for t in range(T):
        frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        cv2.circle(frame, (10 + 8 * t, 20), 8, (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    torch.manual_seed(0)
    model = init_model(CONFIG)
    ckpt = str(root / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return dict(video=video, checkpoint=ckpt, model=init_model(CONFIG, ckpt))


def argv(assets, out, *extra, sentences=SENTENCES):
    args = [assets['video'], sentences[0]]
    for sentence in sentences[1:]:
        args += ['--sentence', sentence]
    return args + [
        '--config', CONFIG, '--checkpoint', assets['checkpoint'], '--out',
        str(out), '--batch-size', str(T), '--no-progress', *extra
    ]


def test_demo_writes_every_output(demo, assets, tmp_path):
    out = tmp_path / 'out'
    assert demo.main(argv(assets, out)) == 0
    # nothing but the output folder next to it: the temp folder is gone
    assert os.listdir(tmp_path) == ['out']
    expected = inference_model(assets['model'], assets['video'], SENTENCES,
                               batch_size=T)

    with open(out / 'summary.json') as f:
        summary = json.load(f)
    assert summary['sentences'] == SENTENCES
    assert (summary['num_frames'], summary['height'],
            summary['width']) == (T, H, W)
    assert summary['fps'] == pytest.approx(12.0)
    assert summary['clip_len'] == 8
    for s, (entry, want) in enumerate(zip(summary['per_sentence'],
                                          expected)):
        assert entry['sentence'] == SENTENCES[s]
        assert entry['mask_dir'] == f'masks/{s}'
        masks = np.stack([
            cv2.imread(str(out / 'masks' / str(s) / f'{t:05d}.png'),
                       cv2.IMREAD_UNCHANGED) for t in range(T)
        ])
        assert masks.shape == (T, H, W) and set(np.unique(masks)) <= {0, 255}
        np.testing.assert_array_equal(masks // 255, want['masks'])
        assert entry['area'] == [int(a) for a in (masks > 0).sum((1, 2))]
        np.testing.assert_allclose(entry['score'], want['scores'], atol=1e-5)
    assert sorted(os.listdir(out / 'masks')) == ['0', '1']
    assert sorted(os.listdir(out / 'masks' / '0')) == [
        f'{t:05d}.png' for t in range(T)
    ]

    # the sentences are in a band below the frame, not over it
    band = caption_band_height(W, SENTENCES)
    assert band > 0
    assert summary['outputs']['overlay_size'] == [W, H + band]
    assert summary['outputs']['caption_band'] == 'below'
    cap = cv2.VideoCapture(str(out / summary['outputs']['overlay_video']))
    decoded = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        decoded.append(frame)
    cap.release()
    assert len(decoded) == T and decoded[0].shape == (H + band, W, 3)
    # the frame part is the (random-noise) video, the band mostly black
    assert decoded[0][:H].mean() > 60 and decoded[0][H:].mean() < 40
    gif = Image.open(out / summary['outputs']['gif'])
    assert gif.n_frames == T and gif.size == (W, H + band)
    # GIF stores durations in 1/100 s
    assert gif.info['duration'] == pytest.approx(1000 / 12, abs=10)


def test_demo_is_atomic_when_it_fails_midway(demo, assets, tmp_path,
                                             monkeypatch):
    monkeypatch.setattr(demo, 'init_model', lambda *a, **k: assets['model'])
    written = []
    write_video = demo.write_video

    def video_then_fail(path, frames, fps, size):
        write_video(path, frames, fps, size)
        written.append(os.listdir(osp.dirname(path)))

    def fail(*args, **kwargs):
        raise RuntimeError('disk full (simulated)')

    monkeypatch.setattr(demo, 'write_video', video_then_fail)
    monkeypatch.setattr(demo, 'write_gif', fail)
    out = tmp_path / 'out'
    with pytest.raises(RuntimeError, match='simulated'):
        demo.main(argv(assets, out))
    # the masks and the video had been written (into the temp folder)...
    assert sorted(written[0]) == ['masks', 'overlay.mp4']
    # ...and none of it is left: no output folder, no temp folder
    assert os.listdir(tmp_path) == []

    # an existing output is kept when the replacement fails
    out.mkdir()
    (out / 'old.txt').write_text('previous run')
    with pytest.raises(RuntimeError, match='simulated'):
        demo.main(argv(assets, out, '--overwrite'))
    assert os.listdir(tmp_path) == ['out']
    assert os.listdir(out) == ['old.txt']


def test_demo_replaces_non_empty_out_only_with_overwrite(
        demo, assets, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, 'init_model', lambda *a, **k: assets['model'])
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'old.txt').write_text('previous run')
    assert demo.main(argv(assets, out, sentences=SENTENCES[:1])) == 1
    err = capsys.readouterr().err
    assert str(out) in err and '--overwrite' in err
    assert os.listdir(out) == ['old.txt']
    assert demo.main(argv(assets, out, '--overwrite',
                          sentences=SENTENCES[:1])) == 0
    assert sorted(os.listdir(out)) == [
        'masks', 'overlay.gif', 'overlay.mp4', 'summary.json'
    ]
    assert os.listdir(tmp_path) == ['out']


@pytest.mark.parametrize('case', ['missing', 'unreadable', 'empty', 'oov'])
def test_demo_errors_name_the_bad_input(demo, assets, tmp_path, monkeypatch,
                                        capsys, case):
    monkeypatch.setattr(demo, 'init_model', lambda *a, **k: assets['model'])
    out = tmp_path / 'out'
    args = argv(assets, out)
    if case == 'missing':
        args[0] = str(tmp_path / 'no_such_video.mp4')
        expected = 'no_such_video.mp4'
    elif case == 'unreadable':
        (tmp_path / 'notes.mp4').write_text('not a video')
        args[0] = str(tmp_path / 'notes.mp4')
        expected = 'notes.mp4'
    elif case == 'empty':
        args[args.index(SENTENCES[1])] = '  ,  '
        expected = 'sentence 1 is empty'
    else:
        args[1] = 'xqzzy blorfle'
        expected = "sentence 0 'xqzzy blorfle' has no word known"
    assert demo.main(args) == 1
    err = capsys.readouterr().err
    # one line, prefixed like argparse's own errors
    assert err.startswith('inference.py: error: ') and expected in err
    assert err.count('\n') == 1 and err.endswith('\n')
    assert not out.exists()
    assert [p for p in os.listdir(tmp_path) if p != 'notes.mp4'] == []


def test_demo_no_gif(demo, assets, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, 'init_model', lambda *a, **k: assets['model'])
    out = tmp_path / 'out'
    assert demo.main(argv(assets, out, '--no-gif')) == 0
    assert sorted(os.listdir(out)) == ['masks', 'overlay.mp4', 'summary.json']
    with open(out / 'summary.json') as f:
        outputs = json.load(f)['outputs']
    assert outputs['gif'] is None and outputs['gif_frame_step'] is None


def test_demo_shows_progress_on_long_videos(demo, assets, tmp_path,
                                            monkeypatch, capsys):
    """From PROGRESS_MIN_FRAMES frames on, segmenting and writing each
    output show a progress bar (here the threshold is lowered to the
    test video's length instead of making a long video)."""
    monkeypatch.setattr(demo, 'init_model', lambda *a, **k: assets['model'])
    monkeypatch.setattr(demo, 'PROGRESS_MIN_FRAMES', T)

    def with_progress(out):
        return [a for a in argv(assets, out) if a != '--no-progress']

    assert demo.main(with_progress(tmp_path / 'out')) == 0
    out = capsys.readouterr().out
    assert f'writing overlay.mp4 and masks/ ({T} frames)' in out
    assert f'writing overlay.gif ({T} frames)' in out
    assert out.count(f'{T}/{T}') >= 2  # the mp4 and GIF bars
    # below the threshold: no bar
    monkeypatch.setattr(demo, 'PROGRESS_MIN_FRAMES', T + 1)
    assert demo.main(with_progress(tmp_path / 'out2')) == 0
    assert 'writing overlay' not in capsys.readouterr().out
