# Copyright (c) cmdyseg contributors. All rights reserved.
"""Video-level testing: every listed frame of a video, every expression.

Ref-YouTube-VOS, Ref-DAVIS17 and MeViS score a (video, expression) on all
of its frames. Their video-level datasets (``sample_mode='video'``) give
one sample per video with all its expressions (packed by
:class:`cmdyseg.datasets.transforms.PackReferVideoInputs`); this loop
segments the video through the one inference path,
:func:`cmdyseg.apis.segment_frames` (sliding windows, one video-encoder
pass for all the expressions of a group), and hands the evaluator one
record per expression, masks as COCO RLEs so that a long video with many
expressions stays small in memory.

The evaluator's ``process`` is called once per video: every rank then
holds one result per dataset sample, which is what mmengine's distributed
collection (trimmed to the dataset size) needs -- so a metric used with
this loop must keep one result per ``process`` call, as
:class:`cmdyseg.evaluation.JFMetric`, ``ReferVOSSubmission`` and
``DumpVideoResults`` do (mmengine's ``DumpResults`` keeps one per record
and would lose all but the first expressions).
"""
from typing import Dict, List, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from mmengine.runner.amp import autocast
from pycocotools import mask as mask_utils
from torch.utils.data import DataLoader

from cmdyseg.registry import LOOPS
from cmdyseg.utils.errors import InvalidInputError


def encode_masks(masks: np.ndarray) -> List[dict]:
    """COCO RLEs of a ``(T, H, W)`` stack of 0/1 masks, one per frame."""
    masks = np.asfortranarray(np.asarray(masks, np.uint8).transpose(1, 2, 0))
    return mask_utils.encode(masks)


def expression_records(sample, segmented: Sequence[Dict],
                       expressions: Sequence[Dict]) -> List[Dict]:
    """The evaluator's record of each expression of a video.

    Args:
        sample: the packed video's data sample (metainfo of
            :class:`PackReferVideoInputs`).
        segmented: :func:`segment_frames`'s results for ``expressions``.
        expressions: the expressions (dicts with ``exp_id``, ``sentence``,
            ``mask_ids``, ``category``, ``anno_set``).

    Returns:
        list[dict]: ``video_id``, ``exp_id``, ``sentence``, ``category``,
        ``anno_set``, ``frame_names``, ``ori_shape``, ``pred_masks`` (RLEs
        of every frame), ``scores`` and, when the video has masks,
        ``gt_masks`` (RLEs, the union of the expression's objects).
    """
    from cmdyseg.datasets.transforms.rvos_loading import expression_gt
    meta = sample.metainfo
    shape = tuple(meta['ori_shape'])
    num_frames = len(meta['frame_names'])
    records = []
    for exp, result in zip(expressions, segmented):
        record = dict(
            video_id=meta['video_id'],
            exp_id=str(exp['exp_id']),
            sentence=exp['sentence'],
            category=exp.get('category'),
            anno_set=exp.get('anno_set'),
            frame_names=list(meta['frame_names']),
            ori_shape=shape,
            pred_masks=encode_masks(result['masks']),
            scores=result['scores'].tolist())
        rles = meta.get('gt_object_rles')
        if meta.get('has_gt') and rles is not None:
            ids = [str(i) for i in exp.get('mask_ids', [])]
            if len(ids) == 1:  # the object's own RLEs: nothing to decode
                record['gt_masks'] = list(rles[ids[0]])
            else:
                record['gt_masks'] = encode_masks(
                    expression_gt(rles, ids, num_frames, shape))
        records.append(record)
    return records


@LOOPS.register_module()
class ReferVideoTestLoop(TestLoop):
    """Test loop over video-level samples (one video, all expressions).

    Use it as ``test_cfg = dict(type='ReferVideoTestLoop')`` (or
    ``val_cfg``) with a dataset in ``sample_mode='video'`` whose pipeline
    ends in :class:`PackReferVideoInputs`; ``tools/test.py`` needs nothing
    else. Metrics: :class:`cmdyseg.evaluation.JFMetric`, or
    :class:`cmdyseg.evaluation.ReferVOSSubmission` for the splits without
    public masks (``tools/test.py --format-only --out DIR``).

    Args:
        runner: The runner.
        dataloader (DataLoader | dict): Video-level test dataloader
            (``batch_size=1`` is the natural choice: a sample is a video).
        evaluator (Evaluator | dict | list): The metrics.
        fp16 (bool): Run the model under autocast. Defaults to False.
        batch_size (int): Clip windows per video-encoder call. Defaults
            to 4.
        sentences_per_pass (int): Expressions segmented together (one
            text-encoder call; masks of that many expressions at the
            original size are held at a time). Defaults to 8.
        window_stride (int): 1 (default): every frame from its own clip;
            k > 1: the fast mode of :func:`cmdyseg.apis.segment_frames`.
        interpolate (str): What the fast mode interpolates between the
            encoded frames: ``'features'`` (default), ``'responses'``
            (the head runs on the encoded frames only) or ``'deep'`` (the
            early maps every frame's own).
        share_frames (bool): Compute each frame's backbone maps once per
            video and share them between its windows where the model's
            encoder allows it (exact; see ``segment_frames``). Defaults to
            True.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False,
                 batch_size: int = 4,
                 sentences_per_pass: int = 8,
                 window_stride: int = 1,
                 interpolate: str = 'features',
                 share_frames: bool = True) -> None:
        from cmdyseg.apis.inference import INTERPOLATE_MODES
        if interpolate not in INTERPOLATE_MODES:
            raise InvalidInputError(
                'ReferVideoTestLoop: interpolate must be one of '
                f'{INTERPOLATE_MODES}, got {interpolate!r}')
        for name, value in (('batch_size', batch_size),
                            ('sentences_per_pass', sentences_per_pass),
                            ('window_stride', window_stride)):
            if isinstance(value, bool) or not isinstance(value,
                                                         int) or value < 1:
                raise InvalidInputError(
                    f'ReferVideoTestLoop: {name} must be an int >= 1, got '
                    f'{value!r}')
        if not isinstance(share_frames, bool):
            raise InvalidInputError(
                'ReferVideoTestLoop: share_frames must be True or False, '
                f'got {share_frames!r}')
        super().__init__(runner, dataloader, evaluator, fp16)
        self.batch_size = batch_size
        self.sentences_per_pass = sentences_per_pass
        self.window_stride = window_stride
        self.interpolate = interpolate
        self.share_frames = share_frames

    @property
    def _model(self) -> torch.nn.Module:
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def segment_video(self, inputs: torch.Tensor, sample) -> List[Dict]:
        """The records of every expression of one packed video."""
        from cmdyseg.apis.inference import segment_frames
        meta = sample.metainfo
        if 'window_inds' not in meta or 'expressions' not in meta:
            raise InvalidInputError(
                'ReferVideoTestLoop needs video-level samples: set '
                "sample_mode='video' on the dataset and end its pipeline "
                "with SampleVideoWindows ... PackReferVideoInputs (got a "
                f"sample of video {meta.get('video_id')!r} without "
                'window_inds / expressions)')
        frames = inputs.cpu().numpy() if isinstance(
            inputs, torch.Tensor) else np.asarray(inputs)
        expressions = list(meta['expressions'])
        records = []
        step = self.sentences_per_pass
        for start in range(0, len(expressions), step):
            group = expressions[start:start + step]
            with autocast(enabled=self.fp16):
                segmented = segment_frames(
                    self._model, frames, meta['ori_shape'],
                    [e['sentence'] for e in group], meta['window_inds'],
                    batch_size=self.batch_size,
                    window_stride=self.window_stride,
                    interpolate=self.interpolate,
                    share_frames=self.share_frames)
            records.extend(expression_records(sample, segmented, group))
        return records

    @torch.no_grad()
    def run_iter(self, idx, data_batch: Dict) -> None:
        """Segment the videos of one batch; one ``process`` call each."""
        self.runner.call_hook(
            'before_test_iter', batch_idx=idx, data_batch=data_batch)
        outputs = []
        for inputs, sample in zip(data_batch['inputs'],
                                  data_batch['data_samples']):
            records = self.segment_video(inputs, sample)
            self.evaluator.process(
                data_samples=records,
                data_batch=dict(inputs=[inputs], data_samples=[sample]))
            outputs.extend(records)
        self.runner.call_hook(
            'after_test_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)
