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
