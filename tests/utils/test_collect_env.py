# Copyright (c) cmdyseg contributors. All rights reserved.
from cmdyseg.models.layers import cmdyconv_cpu
from cmdyseg.utils import collect_env


def test_collect_env_reports_the_compiled_kernels(monkeypatch):
    env = collect_env()
    for key in ('PyTorch', 'MMCV', 'MMCV compiled ops', 'cmdyseg',
                'cmdyseg CPU kernel'):
        assert key in env
    ext = cmdyconv_cpu.EXTENSION.get()
    if ext is not None:
        assert env['cmdyseg CPU kernel'] == f'yes ({ext.isa()})'
        assert ext.isa() in ('avx2', 'baseline')
    monkeypatch.setattr(cmdyconv_cpu.EXTENSION, '_result',
                        (None, 'ImportError(x)'))
    assert collect_env()['cmdyseg CPU kernel'] == 'no (ImportError(x))'


def test_collect_env_names_the_cmdyconv_backend_auto_picks(monkeypatch):
    """'CMDyConv backend (cpu)' says what 'auto' picks and why; the CUDA
    line is there only where torch sees a CUDA device."""
    import torch

    from cmdyseg.models.layers.cmdyconv import explain_cmdyconv_backend
    env = collect_env()
    ext = cmdyconv_cpu.EXTENSION.get()
    if ext is not None:
        assert env['CMDyConv backend (cpu)'] == \
            f'cpp (compiled kernel loads, {ext.isa()})'
        assert explain_cmdyconv_backend('cpu') == (
            'cpp', f'compiled kernel loads, {ext.isa()}')
    assert ('CMDyConv backend (cuda)' in env) == torch.cuda.is_available()
    monkeypatch.setattr(cmdyconv_cpu.EXTENSION, '_result',
                        (None, 'ImportError(x)'))
    assert explain_cmdyconv_backend('cpu') == (
        'torch', "cmdyseg's CPU kernel not built: ImportError(x)")
    assert collect_env()['CMDyConv backend (cpu)'] == \
        "torch (cmdyseg's CPU kernel not built: ImportError(x))"


def test_cuda_dispatch_explanation_without_a_gpu(monkeypatch):
    """What 'auto' would pick on CUDA, with each optional dependency
    faked missing or present (no GPU needed: nothing runs)."""
    from cmdyseg.models.layers.cmdyconv import (MMCV_OPS, TRITON,
                                                explain_cmdyconv_backend)
    monkeypatch.setattr(TRITON, '_result', (None, 'ImportError(t)'))
    monkeypatch.setattr(MMCV_OPS, '_result', (None, 'ImportError(m)'))
    name, why = explain_cmdyconv_backend('cuda')
    assert name == 'torch'
    assert why == ("triton does not import: ImportError(t); mmcv's "
                   'compiled ops not installed: ImportError(m)')
    monkeypatch.setattr(MMCV_OPS, '_result', (object(), None))
    assert explain_cmdyconv_backend('cuda') == (
        'mmcv', "triton does not import: ImportError(t); mmcv's compiled "
        'ops load')
    fake_triton = type('triton', (), {'__version__': '9.9'})
    monkeypatch.setattr(TRITON, '_result', (fake_triton, None))
    assert explain_cmdyconv_backend('cuda') == ('triton',
                                                'triton 9.9 imports')


def test_mmcv_backend_without_ops_says_how_to_get_them(monkeypatch):
    """Asking for backend 'mmcv' on mmcv-lite names what is missing, the
    default setup that brings it, and cmdyseg's own kernels."""
    import pytest

    from cmdyseg.models.layers import get_cmdyconv_backend
    from cmdyseg.models.layers.cmdyconv import MMCV_OPS
    from cmdyseg.utils.optional import MissingDependencyError
    monkeypatch.setattr(
        MMCV_OPS, '_result',
        (None, "ModuleNotFoundError(\"No module named 'mmcv._ext'\")"))
    with pytest.raises(MissingDependencyError) as info:
        get_cmdyconv_backend('mmcv', 'cuda')
    msg = str(info.value)
    assert "CMDyConv backend 'mmcv' needs mmcv's compiled ops" in msg
    assert 'mmcv._ext' in msg
    assert 'mmcv-lite' in msg and 'tools/setup_env.sh --lite' in msg
    assert 'bash tools/setup_env.sh' in msg
    assert "'cpp' on CPU, 'triton' on CUDA" in msg
