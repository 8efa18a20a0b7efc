# Copyright (c) cmdyseg contributors. All rights reserved.
import os.path as osp
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
    package_data={'': ['*.txt', '*.json', '*.yml']},
    install_requires=parse_requirements('runtime.txt'),
    extras_require=dict(
        tests=parse_requirements('tests.txt'),
        mim=parse_requirements('mminstall.txt'),
    ),
    zip_safe=False)
