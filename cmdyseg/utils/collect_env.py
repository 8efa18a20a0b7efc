# Copyright (c) cmdyseg contributors. All rights reserved.
from mmengine.utils.dl_utils import collect_env as collect_base_env

from .optional import OptionalImport


def collect_env() -> dict:
    """Versions of the stack, plus whether mmcv's compiled ops and
    cmdyseg's own CPU kernel load (and for which instruction set)."""
    import mmcv

    import cmdyseg
    from cmdyseg.models.layers.cmdyconv import MMCV_OPS
    from cmdyseg.models.layers.cmdyconv_cpu import EXTENSION
    env = collect_base_env()
    env['MMCV'] = mmcv.__version__
    env['MMCV compiled ops'] = ('yes' if MMCV_OPS.available else
                                f'no ({MMCV_OPS.error})')
    mmaction = OptionalImport('mmaction')
    env['MMAction2'] = (mmaction.get().__version__ if mmaction.available else
                        f'not importable ({mmaction.error})')
    env['cmdyseg'] = cmdyseg.__version__
    ext = EXTENSION.get()
    env['cmdyseg CPU kernel'] = (f'yes ({ext.isa()})' if ext is not None
                                 else f'no ({EXTENSION.error})')
    return env


if __name__ == '__main__':
    for name, val in collect_env().items():
        print(f'{name}: {val}')
