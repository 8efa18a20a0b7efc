# Copyright (c) cmdyseg contributors. All rights reserved.
"""The real annotation files of A2D Sentences and J-HMDB Sentences, for the
tests that check the parsers against them.

Developers and CI keep them outside the repository, in ``shared/data/``
beside it (``<repo>/../shared/data/a2d_sentences/a2d_annotation.txt``,
``.../jhmdb_sentences/jhmdb_annotation.txt``, ...); the environment
variable ``CMDYSEG_SHARED_DATA`` names another folder of that layout. Users
do not need them: the tests that do are skipped, saying what is missing and
how to point to it.
"""
import os
import os.path as osp

import pytest

ENV_VAR = 'CMDYSEG_SHARED_DATA'
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_ROOT = osp.join(REPO_ROOT, os.pardir, 'shared', 'data')


def shared_data_root() -> str:
    """``$CMDYSEG_SHARED_DATA`` if set, else ``<repo>/../shared/data``."""
    return osp.normpath(os.environ.get(ENV_VAR) or DEFAULT_ROOT)


def shared_data_path(*parts: str) -> str:
    """A path under :func:`shared_data_root` (which may not exist)."""
    return osp.join(shared_data_root(), *parts)


def requires_shared_data(*files: str, what: str) -> pytest.MarkDecorator:
    """Skip unless every file (relative to the shared data root) exists.

    Args:
        *files: e.g. ``'a2d_sentences/a2d_annotation.txt'``.
        what: what the files are, for the skip reason.
    """
    missing = [f for f in files if not osp.isfile(shared_data_path(f))]
    source = (f'{ENV_VAR}={os.environ[ENV_VAR]}' if os.environ.get(ENV_VAR)
              else f'{ENV_VAR} unset, so <repo>/../shared/data')
    return pytest.mark.skipif(
        bool(missing),
        reason=f'{what} not found: no {", ".join(missing)} in '
        f'{shared_data_root()} ({source}); set {ENV_VAR} to the folder '
        'holding a2d_sentences/ and jhmdb_sentences/ to run this test')
