# Copyright (c) cmdyseg contributors. All rights reserved.
"""Submission files for the splits without public masks.

Ref-YouTube-VOS valid (CodaLab) and MeViS valid (CodaLab 15094) are scored
by their servers from one single-channel PNG per listed frame::

    Annotations/<video_id>/<exp_id>/<frame>.png      0 / 255, mode 'L'

zipped with ``Annotations/`` at the root of the archive for
Ref-YouTube-VOS (as MTTR's ``make_archive(..., base_dir='Annotations')``
writes it), or with the video folders themselves at the root for MeViS
(its README's sample submission): ``archive_root=''``, which the MeViS
dataset config sets through ``submission_cfg``.
:class:`ReferVOSSubmission` writes both from the records of
:class:`cmdyseg.engine.ReferVideoTestLoop`; ``tools/test.py --format-only
--out DIR`` puts it in place of the test metrics.
"""
import os
import os.path as osp
import shutil
import zipfile
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.dist import get_rank, get_world_size
from mmengine.evaluator import BaseMetric, DumpResults
from mmengine.evaluator.metric import _to_cpu
from mmengine.logging import print_log
from PIL import Image
from pycocotools import mask as mask_utils

from cmdyseg.fileio.atomic import atomic_write, replace_dir, temp_dir_for
from cmdyseg.registry import METRICS
from cmdyseg.utils.errors import InvalidInputError

ANNOTATIONS = 'Annotations'


def _check_name(kind: str, value: str, video_id: str) -> str:
    value = str(value)
    if not value or value in ('.', '..') or '/' in value or '\\' in value:
        raise InvalidInputError(
            f'video {video_id!r}: {kind} {value!r} cannot be a path '
            'component of the submission')
    return value


def _staging_dir(out_dir: str, rank: int) -> str:
    return osp.join(out_dir, f'.partial-rank{rank}', ANNOTATIONS)


@METRICS.register_module()
class ReferVOSSubmission(BaseMetric):
    """Write the server's PNGs and their zip; no score is computed.

    Every rank writes the PNGs of its videos into ``out_dir/.partial-rank<k>``
    as they come (so nothing waits in memory); once all are in, rank 0
    checks that every frame of every expression is there, writes
    ``out_dir/<zip_name>`` (atomically) and publishes ``out_dir/Annotations``
    in one rename (an earlier one is replaced). An interrupted run leaves
    the previous submission as it was.

    Reported: ``videos``, ``expressions``, ``frames`` (counts written).

    Args:
        out_dir (str): Where ``Annotations/`` and the zip go (a shared
            folder when testing on several machines).
        zip_name (str): Archive name. Defaults to ``'submission.zip'``.
        archive_root (str): Folder the video folders sit in inside the
            zip: ``'Annotations'`` (default, Ref-YouTube-VOS) or ``''``
            (at the root, MeViS). On disk they are always under
            ``out_dir/Annotations``.
        collect_device (str): See :class:`mmengine.evaluator.BaseMetric`.
        prefix (str, optional): Prefix of the reported counts. Defaults to
            ``'submission'``.
    """
    default_prefix: Optional[str] = 'submission'

    def __init__(self,
                 out_dir: str,
                 zip_name: str = 'submission.zip',
                 archive_root: str = ANNOTATIONS,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not isinstance(out_dir, str) or not out_dir:
            raise InvalidInputError(
                f'ReferVOSSubmission: out_dir must be a folder path, got '
                f'{out_dir!r}')
        if osp.exists(out_dir) and not osp.isdir(out_dir):
            raise InvalidInputError(
                f'{out_dir}: exists and is not a folder (--out must name a '
                'folder for Annotations/ and the zip)')
        if not zip_name.endswith('.zip') or osp.basename(zip_name) != zip_name:
            raise InvalidInputError(
                f'ReferVOSSubmission: zip_name must be a file name ending '
                f'in .zip, got {zip_name!r}')
        if archive_root not in (ANNOTATIONS, ''):
            raise InvalidInputError(
                "ReferVOSSubmission: archive_root must be 'Annotations' "
                f"(Ref-YouTube-VOS) or '' (MeViS), got {archive_root!r}")
        self.archive_root = archive_root
        self.out_dir = osp.abspath(out_dir)
        self.zip_name = zip_name
        self._staging = _staging_dir(self.out_dir, get_rank())
        # what an interrupted run of this rank left
        shutil.rmtree(osp.dirname(self._staging), ignore_errors=True)

    def process(self, data_batch: Any, data_samples: Sequence[Dict]) -> None:
        """Write one PNG per frame of every expression record (``video_id``,
        ``exp_id``, ``frame_names``, ``pred_masks`` as RLEs or a (T, H, W)
        array); keeps one result per call (a video)."""
        written = []
        for rec in data_samples:
            video_id = _check_name('video id', rec['video_id'], '')
            exp_id = _check_name('expression id', rec['exp_id'], video_id)
            names = [
                _check_name('frame', osp.splitext(str(n))[0], video_id)
                for n in rec['frame_names']
            ]
            masks = rec['pred_masks']
            if len(masks) != len(names):
                raise ValueError(
                    f'video {video_id!r} expression {exp_id!r}: '
                    f'{len(masks)} predicted masks for {len(names)} frames')
            folder = osp.join(self._staging, video_id, exp_id)
            os.makedirs(folder, exist_ok=True)
            for name, mask in zip(names, masks):
                if isinstance(mask, dict):
                    mask = mask_utils.decode(mask)
                png = (np.asarray(mask) != 0).astype(np.uint8) * 255
                Image.fromarray(png, mode='L').save(
                    osp.join(folder, name + '.png'))
            written.append((video_id, exp_id, names))
        self.results.append(written)

    def compute_metrics(self, results: List[list]) -> Dict[str, int]:
        """Check, zip and publish (rank 0, after every rank's PNGs)."""
        records = [r for call in results for r in call]
        if not records:
            raise ValueError('ReferVOSSubmission got no predictions')
        stagings = [
            _staging_dir(self.out_dir, k) for k in range(get_world_size())
        ]
        final = osp.join(self.out_dir, ANNOTATIONS)
        merged = temp_dir_for(final)
        try:
            seen = set()
            for video_id, exp_id, names in records:
                if (video_id, exp_id) in seen:  # a distributed sampler's pad
                    continue
                seen.add((video_id, exp_id))
                dst = osp.join(merged, video_id, exp_id)
                os.makedirs(dst, exist_ok=True)
                for name in names:
                    src = next((osp.join(s, video_id, exp_id, name + '.png')
                                for s in stagings if osp.isfile(
                                    osp.join(s, video_id, exp_id, name +
                                             '.png'))), None)
                    if src is None:
                        raise FileNotFoundError(
                            f'{video_id}/{exp_id}/{name}.png was not '
                            f'written under {self.out_dir}/.partial-rank*'
                            ' (is out_dir on a folder every rank shares?)')
                    shutil.copyfile(src, osp.join(dst, name + '.png'))
            zip_path = osp.join(self.out_dir, self.zip_name)
            num_frames = 0
            with atomic_write(zip_path, 'wb') as f, zipfile.ZipFile(
                    f, 'w', zipfile.ZIP_DEFLATED) as zf:
                for video_id, exp_id in sorted(seen):
                    folder = osp.join(merged, video_id, exp_id)
                    for name in sorted(os.listdir(folder)):
                        arcname = f'{video_id}/{exp_id}/{name}'
                        if self.archive_root:
                            arcname = f'{self.archive_root}/{arcname}'
                        zf.write(osp.join(folder, name), arcname)
                        num_frames += 1
            replace_dir(merged, final, overwrite=True)
        except BaseException:
            shutil.rmtree(merged, ignore_errors=True)
            raise
        for s in stagings:
            shutil.rmtree(osp.dirname(s), ignore_errors=True)
        videos = {v for v, _ in seen}
        print_log(
            f'ReferVOSSubmission: {len(seen)} expressions of {len(videos)} '
            f'videos ({num_frames} PNGs) in {final} and {zip_path}',
            logger='current')
        return dict(
            videos=len(videos), expressions=len(seen), frames=num_frames)


@METRICS.register_module()
class DumpVideoResults(DumpResults):
    """mmengine's :class:`DumpResults` for video-level tests: the records
    of one ``process`` call (one video's expressions, from
    :class:`cmdyseg.engine.ReferVideoTestLoop`) are kept as one result, so
    that the distributed collection, trimmed to the number of videos, keeps
    every expression; the file holds the flat list of expression records
    (``video_id``, ``exp_id``, ``pred_masks`` RLEs, ``gt_masks`` ...).
    ``tools/test.py --dump x.pkl`` uses it for video-level configs."""

    def process(self, data_batch: Any, predictions: Sequence[dict]) -> None:
        self.results.append(_to_cpu(list(predictions)))

    def compute_metrics(self, results: list) -> dict:
        return super().compute_metrics([r for call in results for r in call])
