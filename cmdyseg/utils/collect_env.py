# Copyright (c) cmdyseg contributors. All rights reserved.
import importlib.metadata

from mmengine.utils.dl_utils import collect_env as collect_base_env

from .optional import OptionalImport


def _dist_version(name: str):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_env() -> dict:
    """Versions of the stack, whether mmcv's compiled ops and cmdyseg's own
    CPU kernel load (and for which instruction set), and the CMDyConv
    backend that ``'auto'`` picks on each device, with why
    (``'CMDyConv backend (cpu)'``; ``'CMDyConv backend (cuda)'`` when
    torch sees a CUDA device)."""
    import mmcv
    import torch

    import cmdyseg
    from cmdyseg.models.layers.cmdyconv import (MMCV_OPS,
                                                explain_cmdyconv_backend)
    from cmdyseg.models.layers.cmdyconv_cpu import EXTENSION
    env = collect_base_env()
    env['MMCV'] = mmcv.__version__
    if MMCV_OPS.available:
        env['MMCV compiled ops'] = 'yes'
    elif _dist_version('mmcv-lite') and not _dist_version('mmcv'):
        env['MMCV compiled ops'] = (
            'no (mmcv-lite is installed: mmcv without its compiled ops; '
            f'{MMCV_OPS.error})')
    else:
        env['MMCV compiled ops'] = f'no ({MMCV_OPS.error})'
    mmaction = OptionalImport('mmaction')
    env['MMAction2'] = (mmaction.get().__version__ if mmaction.available else
                        f'not importable ({mmaction.error})')
    env['cmdyseg'] = cmdyseg.__version__
    ext = EXTENSION.get()
    env['cmdyseg CPU kernel'] = (f'yes ({ext.isa()})' if ext is not None
                                 else f'no ({EXTENSION.error})')
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for dev in devices:
        name, why = explain_cmdyconv_backend(dev)
        env[f'CMDyConv backend ({dev})'] = f'{name or "none"} ({why})'
    return env


if __name__ == '__main__':
    for name, val in collect_env().items():
        print(f'{name}: {val}')
