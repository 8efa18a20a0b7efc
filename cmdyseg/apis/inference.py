# Copyright (c) cmdyseg contributors. All rights reserved.
"""Segment the actor a sentence refers to in every frame of a video.

The model segments the centre frame of a clip (``CMDySegmentor``). To get a
mask for every frame ``t`` of a video, :func:`inference_model` slides a
window over the video: frame ``t`` is segmented from the clip of
``clip_len`` frames centred on it, frames before the first / after the last
repeating the border frame -- exactly the clip that the dataset transform
``SampleReferClip`` builds for an annotated frame ``t + 1`` (it is used to
compute the indices). ``clip_len``, ``frame_interval`` and the resize come
from the config's test pipeline.

Several sentences share one video pass: the segmentor's
``encode_video`` (backbone + neck) runs once per window (for a 2-D video
encoder each frame's backbone maps once, shared by the windows:
``share_frames``) and its
``encode_text`` once per sentence; only the head runs per (window,
sentence) pair, through its own ``forward`` and ``predict_by_feat`` (its
``predict``) -- the code that ``CMDySegmentor.predict`` uses: the
response map upsampled to the original frame size, a sigmoid and the
model's ``test_cfg`` (SPEC item 12: half of the map's maximum). Nothing
here re-implements the model.
"""
import copy
import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

from cmdyseg.datasets.transforms.loading import clip_indices
from cmdyseg.models.backbones.resnet3d_encoder import FrameCache
from cmdyseg.models.text_encoders.tokenizer import tokenize
from cmdyseg.registry import MODELS, TRANSFORMS
from cmdyseg.utils.checkpoint import check_checkpoint, load_model_checkpoint
from cmdyseg.utils.errors import InvalidInputError
from .video import VideoInput, VideoSource

ConfigType = Union[str, os.PathLike, Config]

# Test-pipeline steps that read files, pick the clip, load / resize the gt
# or pack the sample: inference does those itself (or needs none of them).
_NOT_FRAME_STEPS = frozenset({
    'OpenCVInit', 'OpenCVDecode', 'CachedOpenCVInit', 'CachedOpenCVDecode',
    'DecordInit', 'DecordDecode', 'PyAVInit', 'PyAVDecode', 'RawFrameDecode',
    'LoadListedFrames', 'LoadA2DInstanceMask', 'LoadJHMDBPuppetMask',
    'LoadReferObjectMask', 'LoadVideoObjectMasks', 'ResizeMask',
    'PackReferSegInputs', 'PackReferVideoInputs'
})
# Steps that define the clip window (frame-level and video-level pipelines).
_CLIP_STEPS = frozenset({'SampleReferClip', 'SampleVideoWindows'})
# Steps applied to every frame (deterministic, whole-frame geometry, so
# that the response map still covers the original frame).
_FRAME_STEPS = frozenset({'Resize'})
_FLIP_STEPS = frozenset({'ReferFlip', 'Flip'})


def init_model(config: ConfigType,
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build a segmentor from a config and load its weights.

    Args:
        config (str | PathLike | Config): Config file path or object (it is
            copied, not modified).
        checkpoint (str, optional): Checkpoint path or URL, verified by
            :func:`cmdyseg.utils.checkpoint.check_checkpoint` and loaded
            strictly: a checkpoint of another model raises a one-line
            ``CheckpointError`` (``... was saved from a different model: N
            missing keys (e.g. ...), M unexpected (e.g. ...)``), as does a
            truncated or unsafe file. None leaves the weights as the
            modules initialise them (PyTorch defaults; ``init_weights`` is
            not called, so no pretrained backbone is fetched).
        device (str): Device to put the model on. Defaults to 'cpu'.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The model in eval mode, with the config as ``model.cfg``.
    """
    if isinstance(config, (str, os.PathLike)):
        config = Config.fromfile(os.fspath(config))
    elif isinstance(config, Config):
        config = copy.deepcopy(config)
    else:
        raise TypeError('config must be a file path or a Config, got '
                        f'{type(config).__name__}')
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    if config.get('model') is None:
        raise ValueError(f'config {config.filename} has no "model" entry')
    init_default_scope(config.get('default_scope', 'cmdyseg'))
    model = MODELS.build(config.model)
    if checkpoint is not None:
        path = check_checkpoint(checkpoint)
        load_model_checkpoint(model, path, map_location='cpu')
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def _test_pipeline(cfg: Config) -> List[dict]:
    dataloader = cfg.get('test_dataloader') or {}
    dataset = dataloader.get('dataset') or {}
    pipeline = dataset.get('pipeline') or cfg.get('test_pipeline')
    if not pipeline:
        raise ValueError(
            'the config has neither test_dataloader.dataset.pipeline nor '
            'test_pipeline: cannot tell the clip length and input size')
    return list(pipeline)


class VideoPreprocessor:
    """Read a video and bring its frames to the network input size, as the
    config's test pipeline does.

    From the test pipeline (``test_dataloader.dataset.pipeline``, else
    ``test_pipeline``): ``SampleReferClip`` (or a video-level pipeline's
    ``SampleVideoWindows``) gives ``clip_len`` and ``frame_interval``; its
    ``Resize`` steps (mmaction2's transform, built from the config) are
    applied to every frame, in chunks of ``chunk_size`` frames. Loading,
    mask and packing steps are skipped; a ``ReferFlip`` must have
    ``flip_ratio=0``; any other step is refused (its inference equivalent
    is unknown).

    Calling it on a video returns ``dict(frames, ori_shape, img_shape, fps,
    name)``: ``frames`` a ``(T, h, w, 3)`` uint8 RGB array at the input
    size, ``ori_shape`` ``(H, W)`` the original frame size.

    Args:
        cfg (Config): The model's config.
        chunk_size (int): Frames resized per call of the transforms.
    """

    def __init__(self, cfg: Config, chunk_size: int = 64):
        clip_step = None
        self.transforms = []
        for step in _test_pipeline(cfg):
            kind = str(step.get('type', '')).split('.')[-1]
            if kind in _CLIP_STEPS:
                clip_step = dict(step, type='SampleReferClip')
            elif kind in _FRAME_STEPS:
                self.transforms.append(TRANSFORMS.build(copy.deepcopy(step)))
            elif kind in _FLIP_STEPS:
                if step.get('flip_ratio', 0.5) != 0:
                    raise ValueError(
                        f'the test pipeline flips clips at random ({step}); '
                        'inference needs a deterministic pipeline')
            elif kind not in _NOT_FRAME_STEPS:
                raise ValueError(
                    f'test pipeline step {step.get("type")!r} has no '
                    'inference equivalent in cmdyseg.apis (supported frame '
                    f'steps: {sorted(_FRAME_STEPS)})')
        if clip_step is None:
            raise ValueError('the test pipeline has no SampleReferClip (or '
                             'SampleVideoWindows) step: cannot tell the '
                             'clip length')
        self.sampler = TRANSFORMS.build(copy.deepcopy(clip_step))
        self.clip_len = self.sampler.clip_len
        self.frame_interval = self.sampler.frame_interval
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
        self.chunk_size = chunk_size

    def window_indices(self, t: int, num_frames: int) -> np.ndarray:
        """0-based frame indices ``(clip_len,)`` of the clip that segments
        frame ``t``, the same as the dataset's for annotated frame t + 1."""
        results = self.sampler.transform(
            dict(frame_id=t + 1, total_frames=num_frames))
        return results['frame_inds']

    def windows(self, num_frames: int) -> np.ndarray:
        """The clips ``(num_frames, clip_len)`` that segment every frame
        (row ``t`` = :meth:`window_indices` of ``t``)."""
        return clip_indices(
            np.arange(num_frames), num_frames, self.clip_len,
            self.frame_interval)

    def _resize(self, frames: List[np.ndarray]) -> Dict:
        shape = frames[0].shape[:2]
        results = dict(
            imgs=frames,
            img_shape=shape,
            original_shape=shape,
            modality='RGB')
        for transform in self.transforms:
            results = transform(results)
        return results

    def __call__(self,
                 video: Union[VideoInput, VideoSource],
                 fps: Optional[float] = None) -> Dict:
        source = video if isinstance(video, VideoSource) else \
            VideoSource(video, fps=fps)
        resized: List[np.ndarray] = []
        chunk: List[np.ndarray] = []
        img_shape = None
        for frame in source:
            chunk.append(frame)
            if len(chunk) == self.chunk_size:
                out = self._resize(chunk)
                resized.extend(out['imgs'])
                img_shape = out['img_shape']
                chunk = []
        if chunk:
            out = self._resize(chunk)
            resized.extend(out['imgs'])
            img_shape = out['img_shape']
        frames = np.ascontiguousarray(np.stack(resized), dtype=np.uint8)
        return dict(
            frames=frames,
            ori_shape=tuple(source.frame_shape),
            img_shape=tuple(int(s) for s in img_shape),
            fps=source.fps,
            name=source.name)


def check_sentences(sentences: Union[str, Sequence[str]],
                    text_encoder: Optional[torch.nn.Module] = None
                    ) -> List[str]:
    """Validate referring expressions and return them as a list.

    A sentence must be a str with at least one word (after the text
    encoder's tokenisation: lower-case, punctuation removed); with a
    ``text_encoder`` that has ``count_known_words``, at least one word must
    also have a word vector (otherwise the encoder sees only zero vectors
    and the mask does not depend on the sentence).

    Raises:
        TypeError: Not a str / list of str.
        ValueError: No sentence, an empty one or one without a known word;
            the message names the sentence and its index.
    """
    if isinstance(sentences, str):
        sentences = [sentences]
    if not isinstance(sentences, (list, tuple)):
        raise TypeError('sentences must be a str or a list of str, got '
                        f'{type(sentences).__name__}')
    if not sentences:
        raise ValueError('no sentence given')
    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise TypeError(f'sentence {i} is not a str: {sentence!r}')
        words = text_encoder.tokenize(sentence) if hasattr(
            text_encoder, 'tokenize') else tokenize(sentence)
        if not words:
            raise ValueError(f'sentence {i} is empty (no word after removing '
                             f'punctuation): {sentence!r}')
        if hasattr(text_encoder, 'count_known_words') and \
                text_encoder.count_known_words(sentence) == 0:
            raise ValueError(
                f'sentence {i} {sentence!r} has no word known to the text '
                f'encoder (words {words} are all out of its vocabulary)')
    return list(sentences)


def check_windows(windows: Union[np.ndarray, VideoPreprocessor],
                  num_frames: int) -> np.ndarray:
    """The clip indices ``(num_frames, clip_len)`` of every frame, from an
    array (checked: in range, one row per frame) or a
    :class:`VideoPreprocessor`."""
    if hasattr(windows, 'windows'):  # a VideoPreprocessor
        windows = windows.windows(num_frames)
    windows = np.asarray(windows, np.int64)
    if windows.ndim != 2 or windows.shape[0] != num_frames or (
            windows.size and not 0 <= windows.min() <= windows.max() <
            num_frames):
        raise ValueError(
            f'windows must be ({num_frames}, clip_len) indices into the '
            f'{num_frames} frames, got shape {windows.shape}')
    return windows


def window_centres(num_frames: int, window_stride: int) -> np.ndarray:
    """The frames whose own clip is encoded: every ``window_stride``-th
    frame from the first, and the last one (all frames for 1)."""
    if isinstance(window_stride, bool) or not isinstance(
            window_stride, (int, np.integer)) or window_stride < 1:
        raise ValueError(
            f'window_stride must be an int >= 1, got {window_stride!r}')
    centres = np.arange(0, num_frames, window_stride)
    if centres.size and centres[-1] != num_frames - 1:
        centres = np.append(centres, num_frames - 1)
    return centres


#: What the fast mode interpolates between two encoded frames.
INTERPOLATE_MODES = ('features', 'responses', 'deep')


def check_interpolate(interpolate: str) -> str:
    """``interpolate`` checked against :data:`INTERPOLATE_MODES`."""
    if interpolate not in INTERPOLATE_MODES:
        raise ValueError(f'interpolate must be one of {INTERPOLATE_MODES}, '
                         f'got {interpolate!r}')
    return interpolate


@torch.no_grad()
def segment_frames(model: torch.nn.Module,
                   frames: np.ndarray,
                   ori_shape: Sequence[int],
                   sentences: Sequence[str],
                   windows: Union[np.ndarray, VideoPreprocessor],
                   batch_size: int = 4,
                   progress: bool = False,
                   window_stride: int = 1,
                   interpolate: str = 'features',
                   share_frames: bool = True) -> List[Dict]:
    """Masks of every frame for every sentence (the core of
    :func:`inference_model`).

    Exact mode (``window_stride=1``, the default): frame ``t`` is segmented
    from its own clip ``windows[t]``, as the model was trained; the video
    encoder therefore sees every frame ``clip_len`` times. Fast mode
    (``window_stride=k > 1``): only the clips of every k-th frame (and of
    the last frame) go through the video encoder. With
    ``interpolate='features'`` the video feature of a frame in between is
    the linear interpolation of the features of the two encoded frames
    around it, and the head (dynamic convolutions, response map) still runs
    on every frame; with ``interpolate='responses'`` the head runs only on
    the encoded frames too and a frame in between gets the linear
    interpolation of their response maps (logits, at the head's
    resolution). Either way the mask of every frame is made from its own
    response (upsampled, sigmoid, half-max). With ``interpolate='deep'``
    (models whose early maps are the clip's centre step, e.g. the tiny
    config) only the deep part of the video feature is interpolated (the
    layer3 pair through the neck, and the early ConvLSTM) and the early
    maps' part is every frame's own, from the few frames around it
    (``encode_video_early``); the head runs on every frame. The video
    encoder -- and with ``'responses'`` the head -- runs about k times
    less often (the speed-up and the agreement with the exact mode are
    measured in configs/cmdyconv/README.md).

    With ``share_frames`` (the default), a model whose video encoder mixes
    frames only in its temporal pool (``model.frame_support()`` is None:
    a 2-D encoder, as the main job's) computes each frame's backbone maps
    once and the windows share them (``encode_windows``): the same
    features as encoding each window, at a fraction of the backbone's
    cost, in every mode; other models encode each window, as without it.

    Args:
        model (CMDySegmentor): In eval mode; its ``data_preprocessor``,
            ``encode_video``, ``encode_text``, ``head.predict`` and
            ``test_cfg`` are used.
        frames (np.ndarray): ``(T, h, w, 3)`` uint8 RGB at the input size.
        ori_shape (Sequence[int]): ``(H, W)`` of the original frames.
        sentences (Sequence[str]): S checked sentences.
        windows (np.ndarray | VideoPreprocessor): The clip of every frame,
            ``(T, clip_len)`` 0-based indices into ``frames`` (a video-level
            dataset's ``window_inds``), or the preprocessor that gives them
            (:meth:`VideoPreprocessor.windows`).
        batch_size (int): Windows per video-encoder call (and frames per
            head call).
        progress (bool): Show an mmengine progress bar over the frames.
        window_stride (int): 1 for the exact mode, k > 1 for the fast mode
            (see above).
        interpolate (str): What the fast mode interpolates: ``'features'``
            (default), ``'responses'`` or ``'deep'`` (see above); unused
            when ``window_stride`` is 1.
        share_frames (bool): Share each frame's backbone maps between the
            windows where the model allows it (see above; exact). False
            encodes every window on its own.

    Returns:
        list[dict]: One per sentence: ``sentence``, ``masks`` ``(T, H, W)``
        uint8 0/1 and ``scores`` ``(T,)`` float32, the mean probability
        inside each mask (0 for an empty mask).
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    num_frames = frames.shape[0]
    windows = check_windows(windows, num_frames)
    centres = window_centres(num_frames, window_stride)
    share_head = check_interpolate(interpolate) == 'responses'
    own_early = interpolate == 'deep' and window_stride > 1
    if own_early:
        why = model.early_support()
        if why is not None:
            # a ValueError too; the tools report it as one line
            raise InvalidInputError(
                f"interpolate='deep' needs early maps that are "
                f"each frame's own: {why}; use 'features' or 'responses'")
    head = model.head
    H, W = (int(s) for s in ori_shape)
    masks = [np.zeros((num_frames, H, W), np.uint8) for _ in sentences]
    scores = [np.zeros(num_frames, np.float32) for _ in sentences]
    text = model.encode_text(sentences)  # (S, D_T)
    img_shape = tuple(int(x) for x in frames.shape[1:3])
    bar = ProgressBar(num_frames) if progress else None

    def normalised(stack: np.ndarray) -> torch.Tensor:
        # (B, L, h, w, 3) uint8 -> (B, 3, L, h, w), as PackReferSegInputs
        # packs, through the data preprocessor
        clips = torch.from_numpy(stack).permute(0, 4, 1, 2, 3).contiguous()
        return model.data_preprocessor(
            dict(inputs=clips, data_samples=None))['inputs']

    def clips_of(cs) -> torch.Tensor:
        return normalised(frames[windows[cs]])

    def frames_of(ts: np.ndarray) -> torch.Tensor:
        # one-frame clips (n, 3, 1, h, w), normalised as the clips are
        # (the data preprocessor works per pixel)
        return normalised(frames[ts][:, None])

    shared = share_frames and hasattr(model, 'frame_support') and \
        model.frame_support() is None
    cache = FrameCache() if shared else None

    def encode(cs: np.ndarray) -> torch.Tensor:
        if cache is not None:
            # windows come in order of their first frame: what no window
            # still to be segmented reads can go (in the fast mode the
            # frames after the last encoded one, and those waiting for a
            # whole batch, still need theirs: 'deep' takes their early
            # maps from the cache)
            oldest = todo_ts[0] if todo_ts else (
                prev[0] + 1 if prev is not None else int(cs[0]))
            cache.forget(before=int(windows[min(oldest, int(cs[0]))].min()))
            out = model.encode_windows(frames_of, windows[cs], cache,
                                       split=own_early)
        elif own_early:
            out = model.encode_video_split(clips_of(cs))
        else:
            out = model.encode_video(clips_of(cs))
        # with own_early the deep part; the early one comes per frame
        return out[0] if own_early else out

    def respond(visual: torch.Tensor) -> torch.Tensor:
        """(n, C, h, w) video features -> (n, S, h', w') response logits,
        the head's forward (what its ``predict`` starts with)."""
        return torch.cat([
            head(visual, text[s:s + 1].expand(visual.shape[0], -1))
            for s in range(len(sentences))
        ], 1)

    def decode(ts: List[int], logits: torch.Tensor) -> None:
        metas = [dict(ori_shape=(H, W), img_shape=img_shape)] * len(ts)
        for s in range(len(sentences)):
            preds = head.predict_by_feat(logits[:, s:s + 1], metas,
                                         model.test_cfg)
            masks[s][ts] = torch.cat(
                [p['pred_mask'] for p in preds]).cpu().numpy()
            scores[s][ts] = torch.stack(
                [p['pred_score'] for p in preds]).cpu().numpy()
        if bar is not None:
            bar.update(len(ts))

    # the fast mode's interpolated frames wait here until a whole batch is
    # ready: the frames between two encoded ones are fewer than batch_size
    # at small strides, and the head on batches of 2 cost ~1.5x per frame
    # (stride 2, 4 sentences) what it costs on batches of 4
    todo_ts: List[int] = []
    todo: List[torch.Tensor] = []

    def drain(final: bool) -> None:
        nonlocal todo_ts, todo
        if not todo_ts:
            return
        vals = torch.cat(todo)
        n = len(todo_ts) if final else (
            len(todo_ts) // batch_size * batch_size)
        for i in range(0, n, batch_size):
            ts, part = todo_ts[i:i + batch_size], vals[i:i + batch_size]
            if own_early and cache is not None:
                part = part + model.encode_windows_early(
                    frames_of, windows[ts], cache)
            elif own_early:
                part = part + model.encode_video_early(clips_of(ts))
            decode(ts, part if share_head else respond(part))
        todo_ts, todo = todo_ts[n:], [vals[n:]]

    prev = None  # (frame, what is interpolated) of the last encoded frame
    for start in range(0, len(centres), batch_size):
        batch = centres[start:start + batch_size]
        visual = encode(batch)
        if window_stride == 1:
            decode(batch.tolist(), respond(visual))
            continue
        # the fast mode: interpolate the features, or the responses
        known = respond(visual) if share_head else visual
        for c, cur in zip(batch.tolist(), known):
            if prev is None:
                ts, vals = [c], cur[None]
            else:
                p, pval = prev
                ts = list(range(p + 1, c + 1))
                w = torch.tensor([(t - p) / (c - p) for t in ts],
                                 dtype=cur.dtype).view(-1, 1, 1, 1)
                vals = torch.lerp(pval[None], cur[None], w)
            todo_ts += ts
            todo.append(vals)
            prev = (c, cur)
        drain(final=False)
    drain(final=True)
    if bar is not None:
        bar.file.write('\n')
        bar.file.flush()
    return [
        dict(sentence=sentence, masks=m, scores=sc)
        for sentence, m, sc in zip(sentences, masks, scores)
    ]


def inference_model(model: torch.nn.Module,
                    video: Union[VideoInput, VideoSource],
                    sentences: Union[str, Sequence[str]],
                    batch_size: int = 4,
                    progress: bool = False,
                    fps: Optional[float] = None,
                    window_stride: int = 1,
                    interpolate: str = 'features',
                    share_frames: bool = True
                    ) -> Union[Dict, List[Dict]]:
    """Segment what each sentence refers to in every frame of a video.

    Args:
        model (CMDySegmentor): From :func:`init_model` (``model.cfg`` gives
            the test pipeline).
        video (str | PathLike | np.ndarray | list[np.ndarray] |
            VideoSource): A video file, a folder of frames, RGB frames
            ``(H, W, 3)`` uint8 (see :mod:`cmdyseg.apis.video`).
        sentences (str | list[str]): The referring expression(s).
        batch_size (int): Clip windows per video-encoder call. Defaults
            to 4.
        progress (bool): Show a progress bar. Defaults to False.
        fps (float, optional): Frame rate to assume (not used by the
            model; for callers that pass a :class:`VideoSource` it is
            already set).
        window_stride (int): 1 (default): every frame from its own clip,
            exactly as trained; k > 1: the fast mode of
            :func:`segment_frames` (the video encoder runs on every k-th
            frame's clip, features in between interpolated).
        interpolate (str): In the fast mode, ``'features'`` (default),
            ``'responses'`` (the head runs on the encoded frames only,
            response maps in between interpolated) or ``'deep'`` (the
            early maps every frame's own); see :func:`segment_frames`.
        share_frames (bool): Compute each frame's backbone maps once and
            share them between the windows where the model's encoder
            allows it (exact; default True); see :func:`segment_frames`.

    Returns:
        dict | list[dict]: Per sentence, ``dict(sentence, masks, scores)``
        with ``masks`` ``(T, H, W)`` uint8 0/1 at the video's frame size and
        ``scores`` ``(T,)`` float32 (mean probability inside the mask). A
        single dict when ``sentences`` is one str, else a list in the same
        order.
    """
    if not hasattr(model, 'cfg'):
        raise ValueError('model has no .cfg: build it with init_model')
    single = isinstance(sentences, str)
    sentences = check_sentences(sentences, model.text_encoder)
    preprocessor = VideoPreprocessor(model.cfg)
    data = preprocessor(video, fps=fps)
    results = segment_frames(
        model,
        data['frames'],
        data['ori_shape'],
        sentences,
        preprocessor,
        batch_size,
        progress,
        window_stride=window_stride,
        interpolate=check_interpolate(interpolate),
        share_frames=share_frames)
    return results[0] if single else results
