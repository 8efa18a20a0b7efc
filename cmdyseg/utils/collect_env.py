# Copyright (c) cmdyseg contributors. All rights reserved.
from mmengine.utils.dl_utils import collect_env as collect_base_env


def collect_env() -> dict:
    """Versions of the stack, plus whether mmcv's compiled ops and
    cmdyseg's own CPU kernel load (and for which instruction set)."""
    import mmcv

    import cmdyseg
    env = collect_base_env()
    env['MMCV'] = mmcv.__version__
    try:
        from mmcv.ops import modulated_deform_conv2d  # noqa: F401
        env['MMCV compiled ops'] = 'yes'
    except (ImportError, OSError) as e:
        env['MMCV compiled ops'] = f'no ({e})'
    try:
        import mmaction
        env['MMAction2'] = mmaction.__version__
    except ImportError as e:
        env['MMAction2'] = f'not importable ({e})'
    env['cmdyseg'] = cmdyseg.__version__
    from cmdyseg.models.layers.cmdyconv_cpu import (extension_error,
                                                    load_extension)
    ext = load_extension()
    env['cmdyseg CPU kernel'] = (f'yes ({ext.isa()})' if ext is not None
                                 else f'no ({extension_error()})')
    return env


if __name__ == '__main__':
    for name, val in collect_env().items():
        print(f'{name}: {val}')
