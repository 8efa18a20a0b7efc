# Copyright (c) cmdyseg contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmcv', reason='the neck builds activations with mmcv')

from cmdyseg.models.necks import (ConvLSTM, ConvLSTMCell, Decon,  # noqa: E402
                                  TemporalDeconNeck)
from cmdyseg.registry import MODELS  # noqa: E402


def _randomise_peepholes(cell):
    with torch.no_grad():
        for p in (cell.w_ci, cell.w_cf, cell.w_co):
            p.normal_()
        cell.conv.bias.normal_()


def _eq14_by_hand(cell, x, h_prev, c_prev):
    """Eq. 14 written out with separate W_x / W_h convolutions."""
    cin, hid = cell.in_channels, cell.hidden_channels
    pad = cell.kernel_size // 2
    w, b = cell.conv.weight, cell.conv.bias

    def pre(k):  # k-th gate in order (i, f, g, o)
        sl = slice(k * hid, (k + 1) * hid)
        return (F.conv2d(x, w[sl, :cin], padding=pad)
                + F.conv2d(h_prev, w[sl, cin:], padding=pad)
                + b[sl].view(1, -1, 1, 1))

    def peep(p):
        return p.view(1, -1, 1, 1)

    i = torch.sigmoid(pre(0) + peep(cell.w_ci) * c_prev)
    f = torch.sigmoid(pre(1) + peep(cell.w_cf) * c_prev)
    g = torch.tanh(pre(2))
    c = f * c_prev + i * g
    o = torch.sigmoid(pre(3) + peep(cell.w_co) * c)
    h = o * torch.tanh(c)
    return h, c


def test_convlstm_cell_step_matches_eq14():
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 4, kernel_size=3).double()
    _randomise_peepholes(cell)
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    h_prev = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    c_prev = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    h, c = cell(x, (h_prev, c_prev))
    h_ref, c_ref = _eq14_by_hand(cell, x, h_prev, c_prev)
    assert h.shape == c.shape == (2, 4, 5, 6)
    torch.testing.assert_close(h, h_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c, c_ref, rtol=1e-10, atol=1e-12)
    # the peepholes matter: zeroing them changes the result
    with torch.no_grad():
        cell.w_co.zero_()
    h2, _ = cell(x, (h_prev, c_prev))
    assert not torch.allclose(h2, h)


def test_convlstm_cell_init_and_kernel_size():
    cell = ConvLSTMCell(2, 3, kernel_size=5, forget_bias=1.0)
    b = cell.conv.bias.detach()
    assert torch.equal(b[3:6], torch.ones(3))
    assert b[:3].abs().sum() == 0 and b[6:].abs().sum() == 0
    assert cell.conv.weight.shape == (12, 5, 5, 5)
    x = torch.randn(1, 2, 7, 9)
    h, c = cell(x)  # zero state
    assert h.shape == (1, 3, 7, 9)
    with pytest.raises(ValueError, match='kernel_size'):
        ConvLSTMCell(2, 3, kernel_size=4)
    with pytest.raises(ValueError, match=r'\(B, 2, H, W\)'):
        cell(torch.randn(1, 3, 7, 9))
    no_peep = ConvLSTMCell(2, 3, peephole=False)
    assert no_peep.w_ci is None
    assert len(list(no_peep.parameters())) == 2


def test_convlstm_runs_cell_from_zero_state_and_returns_last_hidden():
    torch.manual_seed(1)
    lstm = ConvLSTM(3, 4, kernel_size=3).double()
    _randomise_peepholes(lstm.cell)
    x = torch.randn(2, 3, 3, 5, 5, dtype=torch.float64)
    h = torch.zeros(2, 4, 5, 5, dtype=torch.float64)
    c = torch.zeros_like(h)
    for t in range(3):
        h, c = _eq14_by_hand(lstm.cell, x[:, :, t], h, c)
    torch.testing.assert_close(lstm(x), h, rtol=1e-10, atol=1e-12)
    # order matters: reversing time gives another state
    assert not torch.allclose(lstm(x.flip(2)), h)


def test_decon_upsamples_x4():
    decon = Decon(6, 5)
    assert decon.deconv.kernel_size == (8, 8)
    assert decon.deconv.stride == (4, 4)
    assert decon.deconv.padding == (2, 2)
    assert decon.conv.kernel_size == (3, 3)
    out = decon(torch.randn(2, 6, 4, 3))
    assert out.shape == (2, 5, 16, 12)
    # no output activation by default: F_V^M is signed
    assert (out < 0).any()


def _inputs(b=2, c=8, t=3, h=4, w=5):
    feat = torch.randn(b, c, t, h, w)
    static = F.normalize(feat.mean(2), dim=1)
    return feat, static


@pytest.mark.parametrize(
    'kwargs, lstm_in, lstm_hidden',
    [(dict(), 8, 8), (dict(lstm_input_proj=4), 4, 4),
     (dict(lstm_input_proj=4, lstm_channels=6), 4, 6),
     (dict(lstm_channels=2, lstm_kernel_size=1), 8, 2)])
def test_neck_temporal_shapes_and_gradients(kwargs, lstm_in, lstm_hidden):
    torch.manual_seed(2)
    neck = MODELS.build(
        dict(type='TemporalDeconNeck', in_channels=8, out_channels=6,
             **kwargs))
    assert neck.clstm.cell.in_channels == lstm_in
    assert neck.clstm.cell.hidden_channels == lstm_hidden
    assert (neck.lstm_input_proj is not None) == ('lstm_input_proj' in kwargs)
    feat, static = _inputs()
    feat.requires_grad_(True)
    out = neck((feat, static))
    assert out.shape == (2, 6, 16, 20)
    # first half from the static branch only, second from the ConvLSTM
    torch.testing.assert_close(out[:, :3], neck.static_decon(static))
    out.square().sum().backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name
    assert feat.grad.abs().sum() > 0


def test_neck_temporal_branch_depends_on_time_order():
    torch.manual_seed(3)
    neck = TemporalDeconNeck(8, out_channels=4)
    feat, static = _inputs()
    out = neck((feat, static))
    out_rev = neck((feat.flip(2), static))
    torch.testing.assert_close(out[:, :2], out_rev[:, :2])
    assert not torch.allclose(out[:, 2:], out_rev[:, 2:])


def test_neck_without_temporal():
    torch.manual_seed(4)
    neck = TemporalDeconNeck(8, out_channels=6, use_temporal=False)
    assert not hasattr(neck, 'clstm')
    feat, static = _inputs()
    out = neck((feat, static))
    assert out.shape == (2, 6, 16, 20)
    out.sum().backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # odd out_channels is fine without the temporal branch only
    assert TemporalDeconNeck(8, 5, use_temporal=False)(
        (feat, static)).shape[1] == 5
    with pytest.raises(ValueError, match='even'):
        TemporalDeconNeck(8, 5)


def test_neck_faithful_lstm_size():
    # hidden = input (the paper): gate conv (2C -> 4C, 3x3) + bias + peepholes
    neck = TemporalDeconNeck(16, out_channels=4)
    n = sum(p.numel() for p in neck.clstm.parameters())
    assert n == 32 * 64 * 9 + 64 + 3 * 16


def test_neck_rejects_bad_inputs():
    neck = TemporalDeconNeck(8, out_channels=4)
    feat, static = _inputs()
    with pytest.raises(TypeError, match='feat, static'):
        neck(static)
    with pytest.raises(ValueError, match='static must be'):
        neck((feat, static[:, :4]))
    with pytest.raises(ValueError, match='feat must be'):
        neck((static, static))
    with pytest.raises(ValueError, match='disagree'):
        neck((feat[..., :3], static))


@pytest.mark.parametrize('use_temporal', [True, False])
def test_neck_skips_add_projected_early_maps_top_down(use_temporal):
    torch.manual_seed(0)
    neck = TemporalDeconNeck(
        8, 6, use_temporal=use_temporal, skip_channels=(5, 3))
    plain = TemporalDeconNeck(8, 6, use_temporal=use_temporal)
    plain.load_state_dict(
        {k: v for k, v in neck.state_dict().items()
         if not k.startswith('skip_projs.')})
    feat = torch.randn(2, 8, 3, 4, 4)
    static = torch.randn(2, 8, 4, 4)
    low = torch.randn(2, 5, 16, 16, requires_grad=True)
    stem = torch.randn(2, 3, 32, 32, requires_grad=True)
    out = neck((feat, static, low, stem))
    assert out.shape == (2, 6, 32, 32)
    # at 4h x 4w: add; the finer map: upsample x2 first, then add
    mid = plain((feat, static)) + neck.skip_projs[0](low)
    want = F.interpolate(mid, size=(32, 32), mode='bilinear',
                         align_corners=False) + neck.skip_projs[1](stem)
    torch.testing.assert_close(out, want)
    out.sum().backward()
    assert low.grad.abs().sum() > 0 and stem.grad.abs().sum() > 0
    # one int is one map
    assert TemporalDeconNeck(8, 6, skip_channels=5).skip_channels == (5, )
    # the encoder's pair alone is refused, naming the encoder option
    with pytest.raises(TypeError, match='skips='):
        neck((feat, static))
    with pytest.raises(ValueError, match=r'early map 1 must be .* C = 3'):
        neck((feat, static, low, torch.randn(2, 3, 64, 64)))
    with pytest.raises(ValueError, match=r'early map 0 must be'):
        neck((feat, static, torch.randn(2, 5, 8, 8), stem))
    with pytest.raises(ValueError, match='skip_channels'):
        TemporalDeconNeck(8, 6, skip_channels=(0, ))


def _skip_lstm_by_hand(neck, feat, static, lstm_input, low, stem):
    """F_V^M of a neck with skips (layer1, stem) and the fine ConvLSTM:
    the pair, + ConvLSTM(lstm_input) and the reduced layer1 ``low``, up
    x2, + stem."""
    pair = torch.cat([neck.static_decon(static),
                      neck.temporal_decon(neck.clstm(feat))], 1)
    mid = (pair + neck.skip_lstm_proj(neck.skip_clstm(lstm_input)) +
           neck.skip_projs[0](low))
    return F.interpolate(mid, size=(32, 32), mode='bilinear',
                         align_corners=False) + neck.skip_projs[1](stem)


def test_neck_skip_lstm_runs_a_convlstm_on_an_early_map_sequence():
    torch.manual_seed(0)
    kw = dict(skip_channels=(5, 3), skip_lstm=dict(index=0, channels=4))
    neck = TemporalDeconNeck(8, 6, **kw)
    feat = torch.randn(2, 8, 3, 4, 4)
    static = torch.randn(2, 8, 4, 4)
    low = torch.randn(2, 5, 3, 16, 16)
    stem = torch.randn(2, 3, 32, 32)
    out = neck((feat, static, low, stem))
    assert out.shape == (2, 6, 32, 32)
    # by hand: the pair, + mean and ConvLSTM of layer1, up x2, + stem
    want = _skip_lstm_by_hand(neck, feat, static, low, low.mean(2), stem)
    torch.testing.assert_close(out, want)
    # the order of the time steps matters there
    out_rev = neck((feat, static, low.flip(2), stem))
    assert not torch.allclose(out, out_rev)
    # it needs the time axis
    with pytest.raises(ValueError, match='skip_time=True'):
        neck((feat, static, low.mean(2), stem))
    # the ablation without the temporal branch has neither ConvLSTM; the
    # early maps still count, averaged over time
    plain = TemporalDeconNeck(8, 6, use_temporal=False, **kw)
    assert not hasattr(plain, 'skip_clstm') and plain.skip_lstm_index is None
    assert plain((feat, static, low, stem)).shape == (2, 6, 32, 32)
    # the centre step instead of the mean
    centre = TemporalDeconNeck(8, 6, skip_reduce='centre', **kw)
    centre.load_state_dict(neck.state_dict())
    want_c = _skip_lstm_by_hand(neck, feat, static, low, low[:, :, 1], stem)
    torch.testing.assert_close(centre((feat, static, low, stem)), want_c)
    with pytest.raises(ValueError, match='skip_reduce'):
        TemporalDeconNeck(8, 6, skip_reduce='last')
    for bad in (dict(index=2, channels=4), dict(index=0), 3,
                dict(index=0, channels=4, frame_diff=1),
                dict(index=0, channels=4, diff=True)):
        with pytest.raises(ValueError, match='skip_lstm must be'):
            TemporalDeconNeck(8, 6, skip_channels=(5, 3), skip_lstm=bad)
    # frame_diff: the ConvLSTM reads [x_t, x_t - x_(t-1)]
    diff = TemporalDeconNeck(
        8, 6, skip_channels=(5, 3),
        skip_lstm=dict(index=0, channels=4, frame_diff=True))
    assert diff.skip_clstm.cell.in_channels == 10
    seq = torch.cat([
        low,
        torch.stack([torch.zeros_like(low[:, :, 0]), low[:, :, 1] -
                     low[:, :, 0], low[:, :, 2] - low[:, :, 1]], 2)
    ], 1)
    want_d = _skip_lstm_by_hand(diff, feat, static, seq, low.mean(2), stem)
    torch.testing.assert_close(diff((feat, static, low, stem)), want_d)


def test_convlstm_batched_input_gates_match_eq14_step_by_step():
    # ConvLSTM convolves the input of all steps at once and skips the zero
    # state's terms; the result is eq. 14 applied step by step from zeros
    torch.manual_seed(0)
    lstm = ConvLSTM(3, 4, kernel_size=3).double()
    _randomise_peepholes(lstm.cell)
    x = torch.randn(2, 3, 5, 6, 7, dtype=torch.float64)
    h = c = torch.zeros(2, 4, 6, 7, dtype=torch.float64)
    for t in range(5):
        h, c = _eq14_by_hand(lstm.cell, x[:, :, t], h, c)
    torch.testing.assert_close(lstm(x), h, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('use_temporal', [True, False])
@pytest.mark.parametrize('frame_diff', [False, True])
def test_neck_split_parts_add_up_to_the_output(use_temporal, frame_diff):
    """part='split': F_V^M = deep + early, early the early maps'
    projections alone (part='early' gives it from the centre steps)."""
    torch.manual_seed(0)
    neck = TemporalDeconNeck(
        8, 12, use_temporal=use_temporal, skip_channels=(5, 3),
        skip_reduce='centre',
        skip_lstm=dict(index=0, channels=4, frame_diff=frame_diff))
    feat, static = _inputs(b=2, c=8, t=3, h=4, w=5)
    low = torch.randn(2, 5, 4, 16, 20)
    stem = torch.randn(2, 3, 6, 32, 40)
    inputs = (feat, static, low, stem)
    with torch.no_grad():
        out = neck(inputs)
        deep, early = neck(inputs, part='split')
        centre = neck((low[:, :, 2], stem[:, :, 3]), part='early')
    assert out.shape == deep.shape == early.shape == (2, 12, 32, 40)
    torch.testing.assert_close(deep + early, out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(centre, early)
    # the early part is the maps' 1x1 projections, carried up by x2
    by_hand = F.interpolate(
        neck.skip_projs[0](low[:, :, 2]), scale_factor=2, mode='bilinear',
        align_corners=False) + neck.skip_projs[1](stem[:, :, 3])
    torch.testing.assert_close(early, by_hand, rtol=1e-5, atol=1e-5)
    # without early maps the split is (F_V^M, None)
    plain = TemporalDeconNeck(8, 12, use_temporal=use_temporal)
    with torch.no_grad():
        d, e = plain((feat, static), part='split')
        torch.testing.assert_close(d, plain((feat, static)))
    assert e is None
    with pytest.raises(ValueError, match="part must be 'all', 'split'"):
        plain((feat, static), part='deep')
