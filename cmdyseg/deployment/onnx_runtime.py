# Copyright (c) cmdyseg contributors. All rights reserved.
"""Run an exported segmentor (``tools/deployment/export_onnx.py``) with
onnxruntime.

:class:`OnnxSegmentor` loads ``MODEL.onnx`` and its sidecar
``MODEL.onnx.json`` and segments videos as
:func:`cmdyseg.apis.inference_model` does: the same clip windows
(:class:`cmdyseg.apis.VideoPreprocessor`, built from the test pipeline
stored in the sidecar), the same tokenizer and word vectors
(:class:`WordVectorLookup`), and the same decoding of the response map --
upsampled to the original frame size, sigmoid, the model's ``test_cfg`` --
by :meth:`BaseDyConvHead.predict_by_feat` itself. Only the network runs in
onnxruntime: backbone, neck, bi-GRU and head in one graph call per batch of
windows, for all sentences at once.

    seg = OnnxSegmentor('tiny.onnx')
    check_sentences(sentences, seg.text_encoder)  # as for a model
    results = seg.inference('video.mp4', sentences)
    # [dict(sentence, masks (T, H, W) uint8, scores (T,) float32), ...]

This module needs torch and cmdyseg (for the preprocessing and the
decoding) besides onnxruntime.
"""
import hashlib
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from cmdyseg.models.text_encoders.tokenizer import tokenize
from cmdyseg.utils.errors import InputNotFoundError, InvalidInputError
from cmdyseg.utils.optional import OptionalImport

__all__ = [
    'ONNXRUNTIME', 'SIDECAR_FORMAT', 'SIDECAR_VERSION', 'OnnxSegmentor',
    'WordVectorLookup', 'load_sidecar', 'onnx_segment_frames',
    'session_from_bytes', 'sidecar_path', 'sha256_file'
]

ONNXRUNTIME = OptionalImport(
    'onnxruntime',
    what='onnxruntime',
    install='Install the deployment requirements: '
    '`pip install -r requirements/deploy.txt`')
#: ``format`` / ``version`` of the sidecar JSON.
SIDECAR_FORMAT = 'cmdyseg-onnx'
SIDECAR_VERSION = 1


def sidecar_path(onnx_path: str) -> str:
    """``MODEL.onnx`` -> ``MODEL.onnx.json``."""
    return os.fspath(onnx_path) + '.json'


def sha256_file(path: str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def load_sidecar(onnx_path: str, sidecar: Optional[str] = None,
                 verify: bool = True) -> Dict:
    """Read and check the sidecar of ``onnx_path``.

    Args:
        onnx_path (str): The exported model.
        sidecar (str, optional): Its JSON (default ``MODEL.onnx.json``).
        verify (bool): Check the model's sha256 against the sidecar's.

    Raises:
        InputNotFoundError: a missing file.
        InvalidInputError: not a cmdyseg sidecar, a newer version, or the
            sidecar of another model file.
    """
    if not osp.isfile(onnx_path):
        raise InputNotFoundError(f'ONNX model not found: {onnx_path}')
    sidecar = sidecar or sidecar_path(onnx_path)
    if not osp.isfile(sidecar):
        raise InputNotFoundError(
            f'ONNX sidecar not found: {sidecar} (export_onnx.py writes it '
            'beside the model; it says how to prepare the inputs)')
    try:
        with open(sidecar, encoding='utf-8') as f:
            meta = json.load(f)
    except ValueError as e:
        raise InvalidInputError(f'{sidecar} is not valid JSON: {e}') from e
    if not isinstance(meta, dict) or meta.get('format') != SIDECAR_FORMAT:
        raise InvalidInputError(
            f'{sidecar} is not a cmdyseg ONNX sidecar (no "format": '
            f'"{SIDECAR_FORMAT}")')
    if meta.get('version', 0) > SIDECAR_VERSION:
        raise InvalidInputError(
            f'{sidecar} has version {meta.get("version")}; this cmdyseg '
            f'reads up to {SIDECAR_VERSION}')
    if verify and meta.get('onnx_sha256'):
        actual = sha256_file(onnx_path)
        if actual != meta['onnx_sha256']:
            raise InvalidInputError(
                f'{sidecar} describes another model: {onnx_path} hashes '
                f'to sha256 {actual[:12]}..., the sidecar says '
                f'{meta["onnx_sha256"][:12]}... (export them again together)')
    return meta


def _tuples(obj):
    """JSON lists back to the tuples the configs had (mmaction's Resize
    takes a tuple ``scale``)."""
    if isinstance(obj, list):
        return tuple(_tuples(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _tuples(v) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------
# sentences -> word vectors (outside the graph)
# --------------------------------------------------------------------------
class WordVectorLookup:
    """Sentences -> the graph's ``word_vectors`` (S, L, D) and ``lengths``
    (S,), as :class:`GRUSentenceEncoder` embeds them: its tokenizer (at most
    ``max_words`` words), the first vector of each word in the file, the
    zero vector for an out-of-vocabulary word, a sentence without words as
    one zero word. Padding to ``num_words`` is zero.

    Also has the encoder's ``tokenize`` and ``count_known_words``, so that
    :func:`cmdyseg.apis.check_sentences` accepts it as a text encoder.

    Args:
        word_to_row (dict): word -> row of ``vectors``.
        vectors (np.ndarray): (V, D) float32.
        max_words (int): the encoder's truncation.
        num_words (int): L, the graph's padding length (<= max_words).
    """

    def __init__(self, word_to_row: Dict[str, int], vectors: np.ndarray,
                 max_words: int, num_words: int):
        self.word_to_row = word_to_row
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.max_words = int(max_words)
        self.num_words = int(num_words)
        self.embed_dims = int(self.vectors.shape[1])
        self._warned = set()

    @classmethod
    def from_meta(cls, meta: Dict,
                  path: Optional[str] = None) -> 'WordVectorLookup':
        """Load the vectors the sidecar names (``path`` overrides its
        file: a relative path in a config is relative to where it ran)."""
        from cmdyseg.fileio.word_vectors import load_word_vectors
        wv = meta['word_vectors']
        words, vectors = load_word_vectors(
            path if path is not None else wv.get('path'),
            wv.get('format', 'auto'))
        if vectors.shape[1] != wv['dims']:
            raise InvalidInputError(
                f'word vectors {path or wv.get("path")!r} have '
                f'{vectors.shape[1]} dims, the exported model takes '
                f'{wv["dims"]}')
        word_to_row = {}
        for i, word in enumerate(words):
            word_to_row.setdefault(word, i)
        return cls(word_to_row, vectors, wv['max_words'], meta['num_words'])

    @classmethod
    def from_text_encoder(cls, encoder,
                          num_words: Optional[int] = None
                          ) -> 'WordVectorLookup':
        """Share the table a :class:`GRUSentenceEncoder` has loaded."""
        encoder.load_vectors()
        table = encoder.embedding_table.detach().cpu().float().numpy()
        # encoder rows are 1-based (row 0 is the OOV vector)
        word_to_row = {w: i - 1 for w, i in encoder._word_to_index.items()}
        return cls(word_to_row, table[1:], encoder.max_words,
                   num_words or encoder.max_words)

    def tokenize(self, sentence: str) -> List[str]:
        return tokenize(sentence, self.max_words)

    def count_known_words(self, sentence: str) -> int:
        return sum(w in self.word_to_row for w in self.tokenize(sentence))

    def __call__(self, sentences: Sequence[str]
                 ) -> Tuple[np.ndarray, np.ndarray]:
        if isinstance(sentences, str):
            raise TypeError('WordVectorLookup expects a list of sentences')
        out = np.zeros((len(sentences), self.num_words, self.embed_dims),
                       np.float32)
        lengths = np.ones(len(sentences), np.int64)
        oov = []
        for s, sentence in enumerate(sentences):
            words = self.tokenize(sentence)
            if len(words) > self.num_words:
                raise InvalidInputError(
                    f'sentence {s} {sentence!r} has {len(words)} words; the '
                    f'exported model takes at most {self.num_words} (export '
                    f'it with --num-words {self.max_words})')
            for t, word in enumerate(words):
                row = self.word_to_row.get(word)
                if row is None:
                    if word not in self._warned:
                        self._warned.add(word)
                        oov.append(word)
                    continue
                out[s, t] = self.vectors[row]
            lengths[s] = max(len(words), 1)
        if oov:
            from mmengine.logging import print_log
            print_log(
                'WordVectorLookup: out-of-vocabulary words (zero vectors): '
                f'{sorted(set(oov))}',
                logger='current',
                level=logging.WARNING)
        return out, lengths


# --------------------------------------------------------------------------
# the segmentor
# --------------------------------------------------------------------------
def _decoder(align_corners: bool):
    """A head with no blocks: only its ``resize`` / ``predict_by_feat``
    (the decoding of :meth:`CMDySegmentor.predict`) are used."""
    from cmdyseg.models.heads.base_dyconv_head import BaseDyConvHead
    return BaseDyConvHead(
        1, 1, groups=1, num_modules=1, coord_channels=0,
        align_corners=align_corners)


class OnnxSegmentor:
    """An exported segmentor in onnxruntime, with the per-clip interface of
    :func:`cmdyseg.apis.segment_frames`.

    Args:
        onnx_path (str): ``MODEL.onnx``.
        sidecar (str, optional): its JSON (default ``MODEL.onnx.json``).
        word_vectors (WordVectorLookup | str, optional): the lookup, or a
            word-vector file replacing the sidecar's; default: the
            sidecar's, loaded on first use.
        num_threads (int, optional): onnxruntime's intra-op threads
            (default: its own choice, all cores).
        providers (list[str], optional): onnxruntime execution providers
            (default ``['CPUExecutionProvider']``).
    """

    def __init__(self,
                 onnx_path: str,
                 sidecar: Optional[str] = None,
                 word_vectors: Union[None, str, WordVectorLookup] = None,
                 num_threads: Optional[int] = None,
                 providers: Optional[Sequence[str]] = None):
        ort = ONNXRUNTIME.require('OnnxSegmentor')
        self.onnx_path = os.fspath(onnx_path)
        self.meta = load_sidecar(self.onnx_path, sidecar)
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                self.onnx_path,
                options,
                providers=list(providers or ['CPUExecutionProvider']))
        except Exception as e:  # onnxruntime's own error types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise InvalidInputError(f'onnxruntime cannot load '
                                    f'{self.onnx_path}: {first}') from e
        self._lookup = None
        if isinstance(word_vectors, WordVectorLookup):
            dims = self.meta['word_vectors']['dims']
            if word_vectors.embed_dims != dims:
                raise InvalidInputError(
                    f'the word vectors have {word_vectors.embed_dims} dims, '
                    f'the exported model takes {dims}')
            # padded to the graph's L
            self._lookup = WordVectorLookup(
                word_vectors.word_to_row, word_vectors.vectors,
                word_vectors.max_words, self.num_words)
        self._word_vectors_path = word_vectors if isinstance(
            word_vectors, (str, os.PathLike)) else None
        self.test_cfg = dict(self.meta['test_cfg'])
        self.decoder = _decoder(self.meta['align_corners'])

    # ------------------------------------------------------- properties
    @property
    def clip_len(self) -> int:
        return int(self.meta['clip_len'])

    @property
    def img_shape(self) -> Tuple[int, int]:
        """(H, W) the graph takes."""
        return tuple(int(s) for s in self.meta['img_shape'])

    @property
    def num_words(self) -> int:
        return int(self.meta['num_words'])

    @property
    def cfg(self):
        """A Config with the exported model's ``test_pipeline`` (what
        :class:`cmdyseg.apis.VideoPreprocessor` reads)."""
        from mmengine.config import Config
        steps = self.meta.get('test_pipeline')
        if not steps:
            raise InvalidInputError(
                f'{self.onnx_path} was exported from a config without a test '
                'pipeline: pass the windows (T, clip_len) and frames at the '
                'input size to segment_frames yourself')
        return Config(dict(test_pipeline=list(_tuples(steps))))

    @property
    def lookup(self) -> WordVectorLookup:
        if self._lookup is None:
            self._lookup = WordVectorLookup.from_meta(
                self.meta, self._word_vectors_path)
        return self._lookup

    @property
    def text_encoder(self) -> WordVectorLookup:
        """What ``check_sentences(sentences, model.text_encoder)`` needs
        (``tokenize``, ``count_known_words``): the lookup."""
        return self.lookup

    def preprocessor(self):
        """The :class:`VideoPreprocessor` of the exported test pipeline."""
        from mmengine.registry import DefaultScope

        from cmdyseg.apis import VideoPreprocessor
        with DefaultScope.overwrite_default_scope('cmdyseg'):
            return VideoPreprocessor(self.cfg)

    # ---------------------------------------------------------- running
    def run(self, clips: np.ndarray, word_vectors: np.ndarray,
            lengths: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """One graph call: ``clips`` (B, 3, T, H, W) uint8, ``word_vectors``
        (S, L, D) float32, ``lengths`` (S,) int64 -> ``response`` (B, S, h,
        w) float32 logits and ``mask`` (B, S, h, w) uint8 at the head's
        resolution."""
        clips = np.ascontiguousarray(clips)
        expected = (3, self.clip_len) + self.img_shape
        if clips.ndim != 5 or tuple(clips.shape[1:]) != expected:
            dims = ', '.join(str(d) for d in expected)
            raise InvalidInputError(
                f'the exported model takes clips (B, {dims}), got '
                f'{tuple(clips.shape)}')
        if clips.dtype != np.uint8:
            raise InvalidInputError(
                f'the exported model takes uint8 clips, got {clips.dtype}')
        response, mask = self.session.run(
            None,
            dict(
                clip=clips,
                word_vectors=np.ascontiguousarray(word_vectors, np.float32),
                lengths=np.ascontiguousarray(lengths, np.int64)))
        return response, mask

    def predict(self, clips: np.ndarray, sentences: Sequence[str],
                ori_shape: Sequence[int]) -> List[List[Dict]]:
        """Per sentence, per clip, the head's prediction dict
        (``seg_logits``, ``pred_mask`` (1, H, W) at ``ori_shape``,
        ``pred_score``), as :meth:`BaseDyConvHead.predict` gives it."""
        words, lengths = self.lookup(list(sentences))
        response, _ = self.run(clips, words, lengths)
        return self.decode(response, ori_shape)

    def decode(self, response: np.ndarray,
               ori_shape: Sequence[int]) -> List[List[Dict]]:
        """``response`` (B, S, h, w) -> per sentence, per clip, what
        :meth:`BaseDyConvHead.predict_by_feat` returns (masks at
        ``ori_shape``)."""
        logits = torch.from_numpy(response)  # (B, S, h, w)
        metas = [dict(ori_shape=tuple(int(s) for s in ori_shape),
                      img_shape=self.img_shape)] * logits.shape[0]
        return [
            self.decoder.predict_by_feat(logits[:, s:s + 1], metas,
                                         self.test_cfg)
            for s in range(logits.shape[1])
        ]

    def segment_frames(self,
                       frames: np.ndarray,
                       ori_shape: Sequence[int],
                       sentences: Sequence[str],
                       windows=None,
                       batch_size: int = 4,
                       progress: bool = False,
                       window_stride: int = 1) -> List[Dict]:
        """:func:`onnx_segment_frames` with this segmentor (``windows``
        default: the exported test pipeline's)."""
        return onnx_segment_frames(
            self, frames, ori_shape, sentences,
            self.preprocessor() if windows is None else windows, batch_size,
            progress, window_stride)

    def inference(self,
                  video,
                  sentences: Union[str, Sequence[str]],
                  batch_size: int = 4,
                  progress: bool = False,
                  fps: Optional[float] = None,
                  window_stride: int = 1) -> Union[Dict, List[Dict]]:
        """:func:`cmdyseg.apis.inference_model` with this segmentor: a
        video (file, folder of frames, frames, ``VideoSource``) -> per
        sentence ``dict(sentence, masks, scores)`` (one dict for one str).
        """
        from cmdyseg.apis import check_sentences
        _check_window_stride(window_stride)
        single = isinstance(sentences, str)
        sentences = check_sentences(sentences, self.text_encoder)
        preprocessor = self.preprocessor()
        data = preprocessor(video, fps=fps)
        results = self.segment_frames(data['frames'], data['ori_shape'],
                                      sentences, preprocessor, batch_size,
                                      progress, window_stride)
        return results[0] if single else results


def _check_window_stride(window_stride: int) -> None:
    if window_stride != 1:
        raise InvalidInputError(
            f'window_stride={window_stride}: the fast mode interpolates the '
            'video features between encoded clips, and the exported graph '
            'runs video encoder and head in one call; use window_stride=1 '
            'with an ONNX model (or the PyTorch model for the fast mode)')


def onnx_segment_frames(segmentor: OnnxSegmentor,
                        frames: np.ndarray,
                        ori_shape: Sequence[int],
                        sentences: Sequence[str],
                        windows,
                        batch_size: int = 4,
                        progress: bool = False,
                        window_stride: int = 1) -> List[Dict]:
    """:func:`cmdyseg.apis.segment_frames` (its exact mode) on
    onnxruntime: frame ``t`` from its own clip ``windows[t]``, packed as
    ``PackReferSegInputs`` packs it, decoded by ``predict_by_feat``; one
    graph call per ``batch_size`` windows, for all sentences at once.

    Args:
        segmentor (OnnxSegmentor): The exported model.
        frames (np.ndarray): ``(T, H, W, 3)`` uint8 RGB at the exported
            input size.
        ori_shape (Sequence[int]): ``(H, W)`` of the original frames.
        sentences (Sequence[str]): S checked sentences.
        windows (np.ndarray | VideoPreprocessor): ``(T, clip_len)`` 0-based
            frame indices, or the preprocessor that gives them
            (``.windows(T)``).
        batch_size (int): Windows per graph call.
        progress (bool): Show an mmengine progress bar over the frames.
        window_stride (int): Only 1: the fast mode of ``segment_frames``
            interpolates video features, which the graph does not expose.

    Returns:
        list[dict]: One per sentence: ``sentence``, ``masks`` ``(T, H, W)``
        uint8 0/1, ``scores`` ``(T,)`` float32.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    _check_window_stride(window_stride)
    frames = np.asarray(frames)
    if frames.ndim != 4 or tuple(frames.shape[1:3]) != segmentor.img_shape:
        raise InvalidInputError(
            f'frames must be (T, {segmentor.img_shape[0]}, '
            f'{segmentor.img_shape[1]}, 3), the exported input size; got '
            f'{tuple(frames.shape)}')
    num_frames = frames.shape[0]
    from cmdyseg.apis.inference import check_windows
    windows = check_windows(windows, num_frames)
    if windows.shape[1] != segmentor.clip_len:
        raise InvalidInputError(
            f'the windows have {windows.shape[1]} frames, the exported '
            f'model takes clips of {segmentor.clip_len}')
    from mmengine.utils import ProgressBar
    H, W = (int(s) for s in ori_shape)
    masks = [np.zeros((num_frames, H, W), np.uint8) for _ in sentences]
    scores = [np.zeros(num_frames, np.float32) for _ in sentences]
    words, lengths = segmentor.lookup(list(sentences))
    bar = ProgressBar(num_frames) if progress else None
    for start in range(0, num_frames, batch_size):
        stop = min(num_frames, start + batch_size)
        # (B, L, h, w, 3) -> (B, 3, L, h, w), as PackReferSegInputs packs
        clips = np.ascontiguousarray(
            frames[windows[start:stop]].transpose(0, 4, 1, 2, 3))
        response, _ = segmentor.run(clips, words, lengths)
        for s, preds in enumerate(segmentor.decode(response, (H, W))):
            masks[s][start:stop] = torch.cat(
                [p['pred_mask'] for p in preds]).numpy()
            scores[s][start:stop] = torch.stack(
                [p['pred_score'] for p in preds]).numpy()
        if bar is not None:
            bar.update(stop - start)
    if bar is not None:
        bar.file.write('\n')
        bar.file.flush()
    return [
        dict(sentence=sentence, masks=m, scores=sc)
        for sentence, m, sc in zip(sentences, masks, scores)
    ]


def session_from_bytes(model_bytes: bytes, num_threads: Optional[int] = None):
    """An onnxruntime CPU session of a serialised model (for checks)."""
    ort = ONNXRUNTIME.require('the onnxruntime check')
    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model_bytes, options, providers=['CPUExecutionProvider'])
