# Copyright (c) cmdyseg contributors. All rights reserved.
import os
import os.path as osp
import sys
import warnings
from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def get_version():
    scope = {}
    with open(osp.join(HERE, 'cmdyseg', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname):
    """Requirement lines of ``requirements/<fname>``, following ``-r``."""
    reqs = []
    with open(osp.join(HERE, 'requirements', fname)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                reqs += parse_requirements(line[3:].strip())
            else:
                reqs.append(line)
    return reqs


def get_extensions():
    """The compiled CPU kernel of the CMDyConv operation
    (``cmdyseg/models/layers/csrc``), built against the installed torch.

    Set ``CMDYSEG_WITH_OPS=0`` to skip it: the library then falls back to
    its pure-PyTorch backend (slower on CPU, same results).
    """
    if os.environ.get('CMDYSEG_WITH_OPS', '1') == '0':
        return [], {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        warnings.warn('torch is not importable at build time (install it '
                      'first and use --no-build-isolation): building '
                      'cmdyseg without its compiled CPU kernel')
        return [], {}
    flags = ['-O3', '-g0', '-fopenmp-simd']
    if sys.platform == 'win32':
        flags = []
    ext = CppExtension(
        'cmdyseg.models.layers._cmdyconv_cpu',
        ['cmdyseg/models/layers/csrc/cmdyconv_cpu.cpp'],
        extra_compile_args=flags)
    return [ext], {'build_ext': BuildExtension}


EXT_MODULES, CMDCLASS = get_extensions()

with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='cmdyseg',
    version=get_version(),
    description='Actor and action video segmentation from a sentence '
    '(CMDyConv) on the OpenMMLab stack',
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    python_requires='>=3.9',
    packages=find_packages(exclude=('configs', 'tools', 'demo', 'tests',
                                    'tests.*')),
    # data files that live beside the code (class-name lists and the like)
    package_data={
        '': ['*.txt', '*.json', '*.yml'],
        # the kernel's sources, beside the module built from them
        'cmdyseg.models.layers': ['csrc/*.cpp', 'csrc/*.h'],
    },
    ext_modules=EXT_MODULES,
    cmdclass=CMDCLASS,
    install_requires=parse_requirements('runtime.txt'),
    extras_require=dict(
        tests=parse_requirements('tests.txt'),
        mim=parse_requirements('mminstall.txt'),
        # ONNX export and runtime (tools/deployment/export_onnx.py)
        deploy=parse_requirements('deploy.txt'),
    ),
    zip_safe=False)
