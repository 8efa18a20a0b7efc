# Copyright (c) cmdyseg contributors. All rights reserved.
"""Every config builds the model it built before the configs were
restructured: the same parameter names and sizes, the same buffer shapes.

The reference is tests/data/config_param_snapshot.json, one entry per file
in configs/cmdyconv/ (``{config: {"params": {name: numel}, "buffers":
{name: shape}}}``). A refactoring of the configs must leave it unchanged; a
new config, or a deliberate change of a model, writes its entry with

    python tests/test_config_rewrite.py configs/cmdyconv/NEW_CONFIG.py
"""
import glob
import json
import os.path as osp
import sys

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'cmdyconv', '*.py')))
SNAPSHOT = osp.join(REPO, 'tests', 'data', 'config_param_snapshot.json')
UPDATE_CMD = 'python tests/test_config_rewrite.py'


def model_signature(config: str) -> dict:
    """Parameter sizes and buffer shapes of the model ``config`` builds
    (not initialised: no weights are read)."""
    import cmdyseg.models  # noqa: F401  (registers the model classes)
    from cmdyseg.registry import MODELS
    init_default_scope('cmdyseg')
    model = MODELS.build(Config.fromfile(config).model)
    params = {n: p.numel() for n, p in model.named_parameters()}
    buffers = {n: list(b.shape) for n, b in model.named_buffers()}
    return dict(params=params, buffers=buffers)


def load_snapshot() -> dict:
    with open(SNAPSHOT) as f:
        return json.load(f)


def write_snapshot(snapshot: dict) -> None:
    """One line per parameter or buffer, sorted: a changed model shows as
    a readable diff."""
    lines = ['{']
    configs = sorted(snapshot)
    for i, config in enumerate(configs):
        lines.append(f' {json.dumps(config)}: {{')
        for j, kind in enumerate(('params', 'buffers')):
            lines.append(f'  "{kind}": {{')
            items = sorted(snapshot[config][kind].items())
            lines += [
                f'   {json.dumps(name)}: {json.dumps(value)}' +
                (',' if k < len(items) - 1 else '')
                for k, (name, value) in enumerate(items)
            ]
            lines.append('  }' + (',' if j == 0 else ''))
        lines.append(' }' + (',' if i < len(configs) - 1 else ''))
    lines.append('}')
    with open(SNAPSHOT, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def test_one_snapshot_entry_per_config():
    snapshot = load_snapshot()
    on_disk = {osp.basename(c) for c in CONFIGS}
    missing = sorted(on_disk - set(snapshot))
    paths = ' '.join(f'configs/cmdyconv/{m}' for m in missing)
    assert not missing, (f'no parameter snapshot for {missing}: add it '
                         f'with `{UPDATE_CMD} {paths}`')
    stale = sorted(set(snapshot) - on_disk)
    assert not stale, (
        f'snapshot entries without a config file: {stale}; remove them '
        f'from {osp.relpath(SNAPSHOT, REPO)}')


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_builds_the_snapshot_model(config):
    name = osp.basename(config)
    expected = load_snapshot().get(name)
    if expected is None:
        pytest.fail(f'no parameter snapshot for {name}: add it with '
                    f'`{UPDATE_CMD} configs/cmdyconv/{name}`')
    got = model_signature(config)
    for kind in ('params', 'buffers'):
        exp, act = expected[kind], got[kind]
        missing = sorted(set(exp) - set(act))
        extra = sorted(set(act) - set(exp))
        changed = sorted((n, exp[n], act[n]) for n in set(exp) & set(act)
                         if exp[n] != act[n])
        assert not (missing or extra or changed), (
            f'{name}: {kind} differ from the snapshot -- missing {missing}, '
            f'new {extra}, changed (name, before, now) {changed}; if the '
            f'model change is intended, `{UPDATE_CMD} '
            f'configs/cmdyconv/{name}`')


if __name__ == '__main__':
    # (re)write the entries of the configs given on the command line
    sys.path.insert(0, REPO)
    snapshot = load_snapshot() if osp.exists(SNAPSHOT) else {}
    for path in sys.argv[1:]:
        snapshot[osp.basename(path)] = model_signature(path)
        print(f'{osp.basename(path)}: '
              f'{len(snapshot[osp.basename(path)]["params"])} parameters')
    write_snapshot(snapshot)
