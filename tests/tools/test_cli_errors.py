# Copyright (c) cmdyseg contributors. All rights reserved.
"""Bad input through the real command lines ends in one line.

Each row of :data:`ROWS` runs one tool (``python tools/test.py ...``,
``python demo/inference.py ...``, ``python tools/train.py ...``,
``bash tools/dist_test.sh ...``) on a bad input and asserts, with
:func:`check_row`:

- exit status 1;
- stderr's last line is ``<tool>: error: ...`` and names the offending
  file or value (``Row.names``);
- no ``Traceback`` anywhere in stderr;
- nothing left behind: the row runs in its own empty folder (the cwd), the
  outputs it asks for (``--out``, ``--work-dir``) point into it, and that
  folder holds exactly what ``Row.setup`` put there before the run (so no
  output folder, work dir, log folder or temp folder survives).

To add a row, append a :class:`Row` to :data:`ROWS`: ``argv`` builds the
command from the shared inputs (:class:`Assets`, made once per module) and
the row's folder; ``setup`` may create files there first; ``check`` may
assert more (it gets the CompletedProcess). :data:`DEBUG_ROWS` names rows
that are also run with ``--debug``, which must show the traceback.
"""
import os
import os.path as osp
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs', 'cmdyconv')
CONFIG = osp.join(
    CONFIGS, 'dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
OTHER_CONFIG = osp.join(CONFIGS,
                        'dyconv_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py')
DEMO = osp.join(ROOT, 'demo', 'inference.py')
TEST = osp.join(ROOT, 'tools', 'test.py')
TRAIN = osp.join(ROOT, 'tools', 'train.py')
DIST_TEST = osp.join(ROOT, 'tools', 'dist_test.sh')
SENTENCE = 'the red circle'
TIMEOUT = 300


class _RunsCode:
    """Unpickling it would run a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {shlex.quote(self.marker)}', ))


@dataclass
class Assets:
    """Inputs shared by the rows (made once per module)."""
    root: str
    video: str  # a 4-frame mp4
    notes: str  # a text file named .mp4
    checkpoint: str  # saved from a model of CONFIG
    other: str  # saved from a model of OTHER_CONFIG
    truncated: str  # the first half of ``checkpoint``
    evil: str  # a checkpoint whose unpickling would create ``marker``
    marker: str
    wrong_hash: str  # ``checkpoint`` under a name promising another hash
    empty_root: str  # an existing folder without a dataset

    def dataset(self) -> str:
        """A tiny synthetic A2D-format dataset, generated on first use;
        a row that damages it works on a copy (:func:`copy_dataset`)."""
        path = osp.join(self.root, 'synthetic_a2d')
        if not osp.isdir(path):
            from cmdyseg.synthetic import generate_synthetic_a2d
            generate_synthetic_a2d(path, seed=0, num_train=2, num_test=2,
                                   num_frames=12, height=48, width=64)
        return path


@pytest.fixture(scope='module')
def assets(tmp_path_factory) -> Assets:
    from cmdyseg.apis import init_model
    root = str(tmp_path_factory.mktemp('cli_error_assets'))
    video = osp.join(root, 'clip.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 12,
                             (62, 46))
    rng = np.random.default_rng(0)
    for _ in range(4):
        writer.write(rng.integers(0, 256, (46, 62, 3), dtype=np.uint8))
    writer.release()
    notes = osp.join(root, 'notes.mp4')
    with open(notes, 'w') as f:
        f.write('not a video\n')
    torch.manual_seed(0)
    checkpoint = osp.join(root, 'tiny.pth')
    torch.save(dict(state_dict=init_model(CONFIG).state_dict()), checkpoint)
    other = osp.join(root, 'dyconv.pth')
    torch.save(
        dict(state_dict=init_model(OTHER_CONFIG).state_dict()), other)
    with open(checkpoint, 'rb') as f:
        data = f.read()
    truncated = osp.join(root, 'truncated.pth')
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])
    marker = osp.join(root, 'pwned')
    evil = osp.join(root, 'evil.pth')
    torch.save(
        dict(
            state_dict=dict(w=torch.zeros(1)),
            meta=dict(note=_RunsCode(marker))), evil)
    wrong_hash = osp.join(root, 'tiny-deadbeef.pth')
    shutil.copy(checkpoint, wrong_hash)
    empty_root = osp.join(root, 'empty_data')
    os.makedirs(empty_root)
    return Assets(root, video, notes, checkpoint, other, truncated, evil,
                  marker, wrong_hash, empty_root)


@dataclass
class Row:
    """One bad input through one command line (see the module doc).

    Args:
        id: the test id.
        argv: ``(assets, folder) -> command``; ``folder`` is the row's
            empty cwd, where outputs must go.
        names: what stderr's last line must contain; ``(assets, folder)
            -> [str]``.
        setup: ``(assets, folder) -> None``, run before the snapshot.
        check: ``(assets, folder, proc) -> None``, more assertions.
        env: extra environment variables.
    """
    id: str
    argv: Callable[[Assets, str], List[str]]
    names: Callable[[Assets, str], Sequence[str]]
    setup: Optional[Callable[[Assets, str], None]] = None
    check: Optional[Callable[[Assets, str, subprocess.CompletedProcess],
                             None]] = None
    env: Dict[str, str] = field(default_factory=dict)


def cmd_demo(a: Assets, d: str, video=None, sentences=(SENTENCE, ),
             checkpoint=None, *extra):
    """demo/inference.py with ``--out`` in the row's folder."""
    sentences = list(sentences)
    more = [x for s in sentences[1:] for x in ('--sentence', s)]
    return [
        sys.executable, DEMO, video or a.video, sentences[0], *more,
        '--config', CONFIG, '--checkpoint', checkpoint or a.checkpoint,
        '--out', osp.join(d, 'out'), '--no-progress', *extra
    ]


def data_root_options(root):
    return [f'{split}_dataloader.dataset.data_root={root}'
            for split in ('train', 'val', 'test')]


def cmd_test(a: Assets, d: str, checkpoint, *extra, data_root=None):
    """tools/test.py with the work dir in the row's folder and a data root
    that exists (the checkpoint rows fail before the dataset is read)."""
    return [
        sys.executable, TEST, CONFIG, checkpoint, '--work-dir',
        osp.join(d, 'work'), *extra, '--cfg-options',
        f'test_dataloader.dataset.data_root={data_root or a.empty_root}'
    ]


def cmd_train(a: Assets, d: str, *extra, data_root=None):
    """tools/train.py with a work dir two levels below the row's folder
    (both are created by the run, and removed when it fails)."""
    return [
        sys.executable, TRAIN, CONFIG, '--work-dir',
        osp.join(d, 'runs', 'work'), *extra, '--cfg-options',
        *data_root_options(data_root or a.empty_root)
    ]


def copy_dataset(a: Assets, d: str, name='data') -> str:
    """A copy of the shared dataset in the row's folder (for ``setup``)."""
    dst = osp.join(d, name)
    shutil.copytree(a.dataset(), dst)
    return dst


def _without_annotations(a, d):
    os.remove(osp.join(copy_dataset(a, d), 'a2d_annotation.txt'))


def _existing_out(a, d):
    os.makedirs(osp.join(d, 'out'))
    with open(osp.join(d, 'out', 'old.txt'), 'w') as f:
        f.write('previous run')


def _payload_did_not_run(a, d, proc):
    assert not osp.exists(a.marker), 'the pickled payload ran'
    assert 'weights_only' not in proc.stderr + proc.stdout


def _frames_with_a_corrupt_jpg(a, d):
    """The test video as a folder of JPEG frames, the second one garbage."""
    folder = osp.join(d, 'frames')
    os.makedirs(folder)
    cap = cv2.VideoCapture(a.video)
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        index += 1
        cv2.imwrite(osp.join(folder, f'{index:05d}.jpg'), frame)
    cap.release()
    with open(osp.join(folder, '00002.jpg'), 'wb') as f:
        f.write(b'not a jpeg at all')


def _corrupt_masks(a, d):
    """A copy of the dataset whose .h5 masks are all garbage."""
    masks = osp.join(copy_dataset(a, d), 'a2d_annotation_with_instances')
    for folder, _, files in os.walk(masks):
        for name in files:
            if name.endswith('.h5'):
                with open(osp.join(folder, name), 'wb') as f:
                    f.write(b'\x00garbage, not HDF5')


def cfg(*items):
    return ['--cfg-options', *items]


DIFFERENT = 'was saved from a different model: '
TRUNCATED = 'is truncated or not a PyTorch checkpoint ('
NOT_LOADED = 'was NOT loaded, for safety: it holds a pickled object that ' \
    'could run code'

ROWS: List[Row] = [
    # ----------------------------------------------------------- demo
    Row('demo-other-model',
        lambda a, d: cmd_demo(a, d, checkpoint=a.other),
        lambda a, d: [a.other, DIFFERENT]),
    Row('demo-truncated-checkpoint',
        lambda a, d: cmd_demo(a, d, checkpoint=a.truncated),
        lambda a, d: [a.truncated, TRUNCATED]),
    Row('demo-missing-video',
        lambda a, d: cmd_demo(a, d, video=osp.join(d, 'no_such_video.mp4')),
        lambda a, d: ['video not found', 'no_such_video.mp4']),
    Row('demo-undecodable-video',
        lambda a, d: cmd_demo(a, d, video=a.notes),
        lambda a, d: [a.notes]),
    Row('demo-empty-sentence',
        lambda a, d: cmd_demo(a, d, sentences=(SENTENCE, '  ,  ')),
        lambda a, d: ['sentence 1 is empty']),
    Row('demo-unknown-words',
        lambda a, d: cmd_demo(a, d, sentences=('xqzzy blorfle', )),
        lambda a, d: ["sentence 0 'xqzzy blorfle' has no word known"]),
    Row('demo-existing-out',
        lambda a, d: cmd_demo(a, d),
        lambda a, d: [osp.join(d, 'out'), '--overwrite'],
        setup=_existing_out),
    # -------------------------------------------------------- test.py
    Row('test-other-model',
        lambda a, d: cmd_test(a, d, a.other),
        lambda a, d: [a.other, DIFFERENT, 'missing key']),
    Row('test-truncated-checkpoint',
        lambda a, d: cmd_test(a, d, a.truncated),
        lambda a, d: [a.truncated, TRUNCATED]),
    Row('test-pickled-object',
        lambda a, d: cmd_test(a, d, a.evil),
        lambda a, d: [a.evil, NOT_LOADED, 'system'],
        check=_payload_did_not_run),
    Row('test-hash-mismatch',
        lambda a, d: cmd_test(a, d, a.wrong_hash),
        lambda a, d: [a.wrong_hash, 'promises sha256 deadbeef']),
    Row('test-missing-data-root',
        lambda a, d: cmd_test(
            a, d, a.checkpoint, data_root=osp.join(d, 'no_such_data')),
        lambda a, d: ['test_dataloader.dataset.data_root',
                      osp.join(d, 'no_such_data')]),
    # the dataset fails while the Runner builds the test loop: the work dir
    # and log folder it had made are removed
    Row('test-dataset-without-annotations',
        lambda a, d: cmd_test(a, d, a.checkpoint,
                              data_root=osp.join(d, 'data')),
        lambda a, d: [osp.join(d, 'data', 'a2d_annotation.txt')],
        setup=_without_annotations),
    Row('test-missing-checkpoint',
        lambda a, d: cmd_test(a, d, osp.join(d, 'no_such.pth')),
        lambda a, d: ['checkpoint file not found', 'no_such.pth']),
    Row('test-format-only-without-out',
        lambda a, d: cmd_test(a, d, a.checkpoint, '--format-only'),
        lambda a, d: ['--format-only needs --out DIR']),
    # --out writes the per-frame submission of video-level configs only;
    # the output folder is not created
    Row('test-out-with-frame-level-config',
        lambda a, d: cmd_test(a, d, a.checkpoint, '--out',
                              osp.join(d, 'sub')),
        lambda a, d: ['--out / --format-only', CONFIG,
                      'is not ReferVideoTestLoop', '--dump']),
    # ------------------------------------------------------- train.py
    Row('train-missing-data-root',
        lambda a, d: cmd_train(a, d, data_root=osp.join(d, 'nothing')),
        lambda a, d: ['train_dataloader.dataset.data_root',
                      osp.join(d, 'nothing')]),
    Row('train-resume-other-model',
        lambda a, d: cmd_train(a, d, '--resume', a.other),
        lambda a, d: [a.other, DIFFERENT]),
    # ---------------------------------------- dist_test.sh (pre-flight)
    Row('dist-test-other-model',
        lambda a, d: ['bash', DIST_TEST, CONFIG, a.other, '2', '--work-dir',
                      osp.join(d, 'work'), '--cfg-options',
                      f'test_dataloader.dataset.data_root={a.empty_root}'],
        lambda a, d: ['test.py: error: ', a.other, DIFFERENT],
        env=dict(PYTHON=sys.executable)),
    # ------------------------------------------------ corrupt data files
    Row('demo-corrupt-jpg-in-frame-folder',
        lambda a, d: cmd_demo(a, d, video=osp.join(d, 'frames')),
        lambda a, d: [osp.join(d, 'frames', '00002.jpg'), 'does not decode'],
        setup=_frames_with_a_corrupt_jpg),
    Row('test-corrupt-h5-mask',
        lambda a, d: cmd_test(a, d, a.checkpoint,
                              data_root=osp.join(d, 'data')),
        lambda a, d: ['.h5: ', 'HDF5', "mask of video '"],
        setup=_corrupt_masks),
    # ------------------------------------------- --cfg-options (train.py)
    Row('train-cfg-top-level-typo',
        lambda a, d: cmd_train(a, d, *cfg('trian_cfg.max_epochs=1')),
        lambda a, d: ["no top-level key 'trian_cfg'",
                      "did you mean 'train_cfg'"]),
    Row('train-cfg-unknown-head-argument',
        lambda a, d: cmd_train(a, d, *cfg('model.head.grups=4')),
        lambda a, d: ['model.head.grups', "did you mean 'groups'"]),
    Row('train-cfg-unknown-dataset-argument',
        lambda a, d: cmd_train(
            a, d, *cfg('train_dataloader.dataset.indicess=2')),
        lambda a, d: ['train_dataloader.dataset.indicess',
                      "did you mean 'indices'"]),
    Row('train-cfg-batch-size-not-an-int',
        lambda a, d: cmd_train(a, d,
                               *cfg('train_dataloader.batch_size=abc')),
        lambda a, d: ['train_dataloader.batch_size', "'abc'", 'int']),
    Row('train-cfg-max-epochs-not-an-int',
        lambda a, d: cmd_train(a, d, *cfg('train_cfg.max_epochs=two')),
        lambda a, d: ['train_cfg.max_epochs', "'two'"]),
    Row('train-cfg-on-missing-at-top-level',
        lambda a, d: cmd_train(a, d, *cfg('on_missing=ignore')),
        lambda a, d: ["'on_missing'",
                      'train_dataloader.dataset.on_missing']),
    Row('train-cfg-option-without-equals',
        lambda a, d: cmd_train(a, d, *cfg('train_cfg.max_epochs')),
        lambda a, d: ["'train_cfg.max_epochs' is not KEY=VALUE"]),
    Row('train-cfg-loop-switch-without-delete',
        lambda a, d: cmd_train(
            a, d, *cfg('train_cfg.type=IterBasedTrainLoop',
                       'train_cfg.max_iters=6')),
        lambda a, d: ['train_cfg.max_epochs', 'train_cfg._delete_=True']),
    Row('test-cfg-bad-on-missing-value',
        lambda a, d: cmd_test(a, d, a.checkpoint,
                              *cfg('test_dataloader.dataset.on_missing=skp')),
        lambda a, d: ['on_missing', "'skp'"]),
]

#: Rows also run with --debug: the traceback shows, the files stay.
DEBUG_ROWS = ['demo-missing-video', 'test-other-model']

_BY_ID = {row.id: row for row in ROWS}


def _snapshot(folder: str) -> List[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = osp.relpath(dirpath, folder)
        found += [osp.join(rel, n) + '/' for n in dirnames]
        found += [osp.join(rel, n) for n in filenames]
    return sorted(found)


def run_row(row: Row, assets: Assets, folder: str, *extra):
    if row.setup is not None:
        row.setup(assets, folder)
    before = _snapshot(folder)
    env = {k: v for k, v in os.environ.items() if k != 'CMDYSEG_DEBUG'}
    env.update(row.env)
    proc = subprocess.run(
        row.argv(assets, folder) + list(extra), cwd=folder, env=env,
        capture_output=True, text=True, timeout=TIMEOUT)
    return proc, before


def check_row(row: Row, assets: Assets, folder: str) -> None:
    proc, before = run_row(row, assets, folder)
    report = f'stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-3000:]}'
    assert proc.returncode == 1, report
    assert 'Traceback' not in proc.stderr, report
    last = proc.stderr.rstrip('\n').splitlines()[-1]
    assert ': error: ' in last, report
    for name in row.names(assets, folder):
        assert name in last, f'{name!r} not in the last line:\n{last}'
    assert _snapshot(folder) == before, 'left behind: ' + ', '.join(
        sorted(set(_snapshot(folder)) - set(before)))
    if row.check is not None:
        row.check(assets, folder, proc)


@pytest.mark.parametrize('row', ROWS, ids=[row.id for row in ROWS])
def test_bad_input_is_one_line(row, assets, tmp_path):
    check_row(row, assets, str(tmp_path))


@pytest.mark.parametrize('row_id', DEBUG_ROWS)
def test_debug_shows_the_traceback(row_id, assets, tmp_path):
    row = _BY_ID[row_id]
    proc, before = run_row(row, assets, str(tmp_path), '--debug')
    assert proc.returncode == 1
    assert 'Traceback (most recent call last)' in proc.stderr
    # the exception's own line still names the input
    last = proc.stderr.rstrip('\n').splitlines()[-1]
    for name in row.names(assets, str(tmp_path)):
        assert name in last
    if row_id == 'test-other-model':
        # it fails once the Runner has made the work dir and log folder:
        # --debug keeps them
        assert osp.isdir(tmp_path / 'work')
        assert len(os.listdir(tmp_path / 'work')) >= 1
