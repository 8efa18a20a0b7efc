# Copyright (c) cmdyseg contributors. All rights reserved.
"""A small synthetic referring-segmentation dataset in the A2D layout.

The real A2D videos and masks cannot be downloaded here, so the default data
of cmdyseg is generated: coloured shapes (the *actors*) that perform simple
motions (the *actions*) on a plain background, described by sentences that
name colour, shape, motion and position. The files are written exactly as
A2D Sentences distributes them, so the real loader
(:class:`cmdyseg.datasets.A2DSentencesDataset`) reads them unchanged::

    Release/videoset.csv           no header: vid, label, start_time,
                                   end_time, height, width, total_frames,
                                   annotated_frames, subset (0 train, 1 test)
    Release/clips320H/<vid>.mp4    'mp4v' clips (``height`` px high, not 320)
    a2d_annotation_with_instances/<vid>/<frame:05d>.h5
                                   1-based frames; ``instance`` (N,) ids,
                                   ``reMask`` (N, W, H) uint8, (W, H) when
                                   N == 1, ``reBBox`` (4, N) x1 y1 x2 y2,
                                   ``id`` (N,) actor-action codes
    a2d_annotation.txt             header ``video_id,instance_id,query``
    a2d_missed_videos.txt          one id a line, no trailing newline;
                                   these videos have a clip and sentences
                                   but no masks (the loader must drop them)
    synthetic_meta.json            not in A2D: metainfo, scene and cue of
                                   every (video, instance), statistics

Actors are ``circle``, ``square`` and ``triangle``; actions are
``moving_left``, ``moving_right``, ``moving_up``, ``moving_down``,
``bouncing``, ``rotating`` and ``standing`` (a circle does not rotate, as
not every A2D actor does every action). The actor-action code is
``10 * actor + action`` with 1-based indices, e.g. 26 = rotating square.

Every video is one of three scene kinds, and every (video, instance)
records the cue a model needs to tell it from the other actors:

- ``none``: every actor has its own (colour, shape); the sentence names
  both, sometimes with a true motion or position phrase.
- ``position``: two actors of the same colour and shape with *identical*
  motion (same size, speed, angle, phase) are separated left/right or
  top/bottom for the whole video; their sentences must use the position
  ("the red square on the left"): spatial context is needed.
- ``motion``: two actors of the same colour and shape differ only in their
  action (e.g. rotating vs standing still, moving left vs right); their
  sentences name the motion only, so one frame cannot tell them apart:
  temporal modelling is needed.

Actors of a ``position``/``motion`` scene other than the pair (0 or 1) have
a (colour, shape) of their own and the cue ``none``. Moving actors of
``none`` scenes sometimes leave the frame, so that some annotated frames do
not contain them (A2D skips those samples); masks are the *visible* part of
each actor (later actors occlude earlier ones).

The defaults (480 train + 50 test videos, 32 frames of 96 x 128 px, 3-5
annotated frames per video, 2 sentences per actor) give about 8.6k training
and 0.9k test samples (sentence x annotated frame), a third of the videos
of each scene kind: enough to learn colour, shape, position and motion
words without memorising the training videos, small enough to generate in
under half a minute and to train the 8 x 64 x 64 tiny model for two epochs
on 2 CPU cores in about ten minutes. A scene depends only on ``(seed,
split, index)``, so the test scenes do not change with ``num_train`` (their
video ids, drawn in order, do).
32 frames leave room for 3-5 annotated frames whose 8-frame clips barely
overlap; at 96 x 128 px (H x W) the shapes are 17-25 px across and still
8-12 px after the resize to 64 x 64.

Output is a pure function of the arguments (same seed, same bytes, given
the same OpenCV/FFmpeg and HDF5 builds): HDF5 object timestamps are off,
text files use ``\\n``, per-video random streams are derived from
``(seed, split, index)``. The dataset is written into a temporary directory
next to the target and renamed at the end.
"""
import json
import math
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import h5py
import numpy as np

ACTORS = ('circle', 'square', 'triangle')
ACTIONS = ('moving_left', 'moving_right', 'moving_up', 'moving_down',
           'bouncing', 'rotating', 'standing')
#: ``metainfo`` to give :class:`A2DSentencesDataset` for this data.
SYNTHETIC_A2D_METAINFO = dict(actors=ACTORS, actions=ACTIONS)

CUES = ('none', 'position', 'motion')
META_FILE = 'synthetic_meta.json'
META_FORMAT = 'cmdyseg-synthetic-a2d'
META_VERSION = 1

#: Actor colours, BGR (the order OpenCV writes), saturated and far apart
#: so that they survive mp4 compression and stand out of the background.
COLOURS = {
    'red': (40, 40, 220),
    'green': (40, 190, 40),
    'blue': (220, 90, 30),
    'yellow': (30, 220, 230),
    'purple': (200, 50, 170),
}
#: Actions each actor can perform (a circle looks the same when rotating).
VALID_ACTIONS = {
    'circle': tuple(a for a in ACTIONS if a != 'rotating'),
    'square': ACTIONS,
    'triangle': ACTIONS,
}
# Actions that keep x (resp. y) constant, usable by a pair separated
# left/right (resp. top/bottom) for the whole video.
_X_FIXED = ('standing', 'rotating', 'bouncing', 'moving_up', 'moving_down')
_Y_FIXED = ('standing', 'rotating', 'moving_left', 'moving_right')

_NOUNS = {
    'circle': ('circle', 'ball', 'disc'),
    'square': ('square', 'box', 'block'),
    'triangle': ('triangle', ),
}
_ACTION_PHRASES = {
    'moving_left': ('moving to the left', 'going left',
                    'that moves to the left', 'sliding towards the left'),
    'moving_right': ('moving to the right', 'going right',
                     'that moves to the right', 'sliding towards the right'),
    'moving_up': ('moving up', 'going upwards', 'that moves up', 'rising'),
    'moving_down': ('moving down', 'going downwards', 'that moves down',
                    'sinking'),
    'bouncing': ('bouncing', 'bouncing up and down', 'that is bouncing',
                 'jumping up and down'),
    'rotating': ('rotating', 'spinning around', 'that is turning',
                 'spinning'),
    'standing': ('standing still', 'not moving', 'that stays in place',
                 'resting without moving'),
}
_POSITION_PHRASES = {
    'left': ('on the left', 'on the left side', 'at the left'),
    'right': ('on the right', 'on the right side', 'at the right'),
    'top': ('at the top', 'in the upper part', 'near the top'),
    'bottom': ('at the bottom', 'in the lower part', 'near the bottom'),
}
_ID_CHARS = ('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
             '0123456789-_')

FPS = 12
SENTENCES_PER_ACTOR = 2
_SUBPIXEL_SHIFT = 4  # cv2 drawing with 1/16 px coordinates
_MAX_TRIES = 200


@dataclass
class ActorTrack:
    """One actor and its trajectory, in pixels of the output frame.

    Args:
        colour (str): key of :data:`COLOURS`.
        actor (str): one of :data:`ACTORS`.
        action (str): one of :data:`ACTIONS`.
        size (float): circumradius of the shape (its extent from the
            centre), px.
        x0, y0 (float): centre at frame 0 (for ``bouncing``, the lowest
            point of the bounce), px.
        vx, vy (float): velocity, px per frame.
        amp (float): bounce height, px. period (float): frames per bounce.
        phase (float): bounce phase, frames.
        angle0 (float): orientation at frame 0, degrees.
        omega (float): rotation speed, degrees per frame.
    """
    colour: str
    actor: str
    action: str
    size: float
    x0: float
    y0: float
    vx: float = 0.
    vy: float = 0.
    amp: float = 0.
    period: float = 1.
    phase: float = 0.
    angle0: float = 0.
    omega: float = 0.

    def pose(self, t: int) -> Tuple[float, float, float]:
        """Centre ``(x, y)`` in px and angle in degrees at 0-based frame t."""
        x = self.x0 + self.vx * t
        y = self.y0 + self.vy * t
        if self.action == 'bouncing':
            y -= self.amp * abs(math.sin(math.pi * (t + self.phase) /
                                         self.period))
        return x, y, self.angle0 + self.omega * t

    @property
    def code(self) -> int:
        """A2D actor-action code: tens = actor, units = action (1-based)."""
        return 10 * (ACTORS.index(self.actor) + 1) + (
            ACTIONS.index(self.action) + 1)


def draw_actor(canvas: np.ndarray, track: ActorTrack, t: int,
               value: int) -> None:
    """Fill ``track``'s shape at frame ``t`` into ``canvas`` (H, W) uint8.

    Drawn without anti-aliasing, so the set of pixels set to ``value`` is
    exactly the shape's mask.
    """
    x, y, angle = track.pose(t)
    scale = 1 << _SUBPIXEL_SHIFT
    if track.actor == 'circle':
        centre = (int(round(x * scale)), int(round(y * scale)))
        radius = int(round(0.85 * track.size * scale))
        cv2.circle(canvas, centre, radius, int(value), -1, cv2.LINE_8,
                   _SUBPIXEL_SHIFT)
        return
    n = 4 if track.actor == 'square' else 3
    theta = np.deg2rad(angle + np.arange(n) * 360. / n - 90.)
    pts = np.stack([x + track.size * np.cos(theta),
                    y + track.size * np.sin(theta)], axis=1)
    pts = np.round(pts * scale).astype(np.int32)
    cv2.fillPoly(canvas, [pts], int(value), cv2.LINE_8, _SUBPIXEL_SHIFT)


@dataclass
class _Scene:
    """Everything generated for one video (before writing)."""
    video_id: str
    subset: int
    missed: bool
    kind: str  # 'none' / 'position' / 'motion'
    tracks: List[ActorTrack]
    cues: List[str]
    sentences: List[List[str]]
    annotated: List[int]  # 1-based frame numbers
    labels: np.ndarray  # (T, H, W) uint8: 0 background, k + 1 actor k
    background: np.ndarray  # (H, W, 3) uint8 BGR

    def frames(self) -> np.ndarray:
        """The video, (T, H, W, 3) uint8 BGR."""
        palette = np.array([(0, 0, 0)] +
                           [COLOURS[tr.colour] for tr in self.tracks],
                           dtype=np.uint8)
        out = palette[self.labels]
        bg = self.labels == 0
        out[bg] = np.broadcast_to(self.background, out.shape)[bg]
        return out

    def present(self, frame: int) -> List[int]:
        """Instance ids visible in 1-based ``frame``, ascending."""
        lab = self.labels[frame - 1]
        return [k for k in range(len(self.tracks)) if (lab == k + 1).any()]


# ---------------------------------------------------------------------------
# Scene sampling
# ---------------------------------------------------------------------------
class _SceneSampler:
    """Samples one scene of a given kind; see the module docstring."""

    def __init__(self, rng: np.random.Generator, num_frames: int,
                 height: int, width: int):
        self.rng = rng
        self.T = num_frames
        self.H = height
        self.W = width
        self.short = min(height, width)
        # axis along which the last ``position`` pair is separated
        self.pair_axis: Optional[int] = None

    # -- small helpers -----------------------------------------------------
    def _uniform(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi)) if hi > lo else float(lo)

    def _choice(self, seq: Sequence):
        return seq[int(self.rng.integers(len(seq)))]

    def _size(self) -> float:
        return self._uniform(0.09, 0.13) * self.short

    def _axis_range(self, size: float, axis: int) -> Tuple[float, float]:
        extent = self.W if axis == 0 else self.H
        return size + 1., extent - 2. - size

    def _place(self, lo: float, hi: float, travel: float) -> float:
        """Start so that start and start + travel lie in [lo, hi]."""
        if travel >= 0:
            return self._uniform(lo, hi - travel)
        return self._uniform(lo - travel, hi)

    def _speed(self, lo: float, hi: float, axis: int) -> float:
        """Speed in px/frame, capped so that the path fits in [lo, hi]."""
        extent = self.W if axis == 0 else self.H
        speed = self._uniform(0.012, 0.02) * extent
        return min(speed, 0.95 * (hi - lo) / max(self.T - 1, 1))

    def make_track(self,
                   colour: str,
                   actor: str,
                   action: str,
                   size: float,
                   x_range: Optional[Tuple[float, float]] = None,
                   y_range: Optional[Tuple[float, float]] = None,
                   exits: bool = False) -> ActorTrack:
        """A track of ``action`` staying in the given centre ranges.

        With ``exits`` (moving actions only) the actor starts inside and
        has fully left the frame at a frame in [0.55 T, 0.85 T].
        """
        xlo, xhi = x_range or self._axis_range(size, 0)
        ylo, yhi = y_range or self._axis_range(size, 1)
        tr = ActorTrack(colour, actor, action, size, 0., 0.,
                        angle0=self._uniform(0., 360.))
        direction = {'moving_left': (0, -1), 'moving_right': (0, 1),
                     'moving_up': (1, -1), 'moving_down': (1, 1)}
        if action in direction:
            axis, sign = direction[action]
            lo, hi = (xlo, xhi) if axis == 0 else (ylo, yhi)
            olo, ohi = (ylo, yhi) if axis == 0 else (xlo, xhi)
            if exits:
                t_exit = self._uniform(0.55, 0.85) * (self.T - 1)
                extent = self.W if axis == 0 else self.H
                # start in the half the actor leaves from
                if sign < 0:
                    start = self._uniform((lo + hi) / 2, hi)
                    speed = (start + size + 1.) / t_exit
                else:
                    start = self._uniform(lo, (lo + hi) / 2)
                    speed = (extent + size + 1. - start) / t_exit
            else:
                speed = self._speed(lo, hi, axis)
                start = self._place(lo, hi, sign * speed * (self.T - 1))
            other = self._uniform(olo, ohi)
            if axis == 0:
                tr.x0, tr.y0, tr.vx = start, other, sign * speed
            else:
                tr.x0, tr.y0, tr.vy = other, start, sign * speed
        elif action == 'bouncing':
            tr.amp = min(self._uniform(0.15, 0.3) * self.H,
                         0.9 * (yhi - ylo))
            tr.period = self._uniform(6., 10.)
            tr.phase = self._uniform(0., tr.period)
            tr.x0 = self._uniform(xlo, xhi)
            tr.y0 = self._uniform(ylo + tr.amp, yhi)
        else:
            tr.x0 = self._uniform(xlo, xhi)
            tr.y0 = self._uniform(ylo, yhi)
            if action == 'rotating':
                tr.omega = self._choice((-1., 1.)) * self._uniform(8., 15.)
        return tr

    def _free_identity(self, used: List[Tuple[str, str]]) -> Tuple[str, str]:
        while True:
            ident = (self._choice(tuple(COLOURS)), self._choice(ACTORS))
            if ident not in used:
                return ident

    def _overlaps(self, tracks: List[ActorTrack], t: int) -> bool:
        for i in range(len(tracks)):
            for j in range(i):
                xi, yi, _ = tracks[i].pose(t)
                xj, yj, _ = tracks[j].pose(t)
                if math.hypot(xi - xj, yi - yj) < (
                        tracks[i].size + tracks[j].size + 1.):
                    return True
        return False

    # -- scenes ------------------------------------------------------------
    def sample(self, kind: str) -> Tuple[List[ActorTrack], List[str]]:
        """Tracks and per-track cue of a scene of ``kind``."""
        for _ in range(_MAX_TRIES):
            if kind == 'none':
                tracks, cues = self._none_scene()
            elif kind == 'position':
                tracks, cues = self._position_scene()
            elif kind == 'motion':
                tracks, cues = self._motion_scene()
            else:
                raise ValueError(f'unknown scene kind {kind!r}, expected '
                                 f'one of {CUES}')
            # actors start apart (they may cross later)
            if not self._overlaps(tracks, 0):
                return tracks, cues
        raise RuntimeError(f'could not place the actors of a {kind!r} scene '
                           f'in {self.H}x{self.W} px after {_MAX_TRIES} '
                           'tries; use larger frames')

    def _none_scene(self):
        n = int(self.rng.choice([1, 2, 3], p=[0.25, 0.45, 0.3]))
        used, tracks = [], []
        for _ in range(n):
            colour, actor = self._free_identity(used)
            used.append((colour, actor))
            action = self._choice(VALID_ACTIONS[actor])
            exits = (n > 1 and action.startswith('moving')
                     and self.rng.random() < 0.25)
            tracks.append(
                self.make_track(colour, actor, action, self._size(),
                                exits=exits))
        return tracks, ['none'] * n

    def _extras(self, used, tracks, cues):
        if self.rng.random() < 0.5:
            colour, actor = self._free_identity(used)
            action = self._choice(VALID_ACTIONS[actor])
            tracks.append(
                self.make_track(colour, actor, action, self._size()))
            cues.append('none')
        return tracks, cues

    def _position_scene(self):
        colour, actor = self._free_identity([])
        size = self._size()
        axis = int(self.rng.integers(2))  # 0: left/right, 1: top/bottom
        self.pair_axis = axis
        fixed = _X_FIXED if axis == 0 else _Y_FIXED
        action = self._choice(
            [a for a in VALID_ACTIONS[actor] if a in fixed])
        extent = self.W if axis == 0 else self.H
        lo, hi = self._axis_range(size, axis)
        mid = extent / 2.
        halves = [(lo, mid - size - 1.), (mid + size + 1., hi)]
        # one trajectory, then the second copy only shifted
        key = 'x_range' if axis == 0 else 'y_range'
        first = self.make_track(colour, actor, action, size,
                                **{key: halves[0]})
        second = ActorTrack(**vars(first))
        if axis == 0:
            second.x0 = self._uniform(*halves[1])
            if action in ('moving_up', 'moving_down', 'bouncing'):
                second.y0 = self._other_start(first, 1)
            else:
                second.y0 = self._uniform(*self._axis_range(size, 1))
        else:
            second.y0 = self._uniform(*halves[1])
            if action in ('moving_left', 'moving_right'):
                second.x0 = self._other_start(first, 0)
            else:
                second.x0 = self._uniform(*self._axis_range(size, 0))
        order = [first, second]
        if self.rng.random() < 0.5:  # which of the two is instance 0
            order.reverse()
        return self._extras([(colour, actor)], order,
                            ['position', 'position'])

    def _other_start(self, track: ActorTrack, axis: int) -> float:
        """A new start along ``axis`` for ``track``'s motion that fits."""
        lo, hi = self._axis_range(track.size, axis)
        if track.action == 'bouncing':
            return self._uniform(lo + track.amp, hi)
        v = track.vx if axis == 0 else track.vy
        return self._place(lo, hi, v * (self.T - 1))

    def _motion_scene(self):
        colour, actor = self._free_identity([])
        size = self._size()
        valid = VALID_ACTIONS[actor]
        a1 = self._choice(valid)
        a2 = self._choice([a for a in valid if a != a1])
        tracks = [self.make_track(colour, actor, a, size) for a in (a1, a2)]
        return self._extras([(colour, actor)], tracks, ['motion', 'motion'])


def _position_words(track: ActorTrack, T: int, H: int, W: int) -> List[str]:
    """Position words true for the whole shape in every frame."""
    xs, ys = zip(*[track.pose(t)[:2] for t in range(T)])
    s = track.size
    words = []
    if max(xs) + s < W / 2.:
        words.append('left')
    if min(xs) - s > W / 2.:
        words.append('right')
    if max(ys) + s < H / 2.:
        words.append('top')
    if min(ys) - s > H / 2.:
        words.append('bottom')
    return words


def _sentences(rng: np.random.Generator, track: ActorTrack, cue: str,
               positions: List[str], num: int) -> List[str]:
    """``num`` different sentences that refer to ``track`` unambiguously.

    ``cue`` decides what must be said: colour and shape always; with
    ``position`` one of ``positions``; with ``motion`` the action (and never
    a position, which could give the pair away).
    """

    def pick(seq):
        return seq[int(rng.integers(len(seq)))]

    forms = {
        'none': ['np', 'np act', 'np pos', 'np pos act'],
        'position': ['np pos', 'np pos act', 'np act pos'],
        'motion': ['np act', 'np act'],
    }[cue]
    if cue != 'position' and not positions:
        forms = [f for f in forms if 'pos' not in f]
    if cue == 'position' and not positions:
        raise RuntimeError('internal error: a position-cue actor without a '
                           'true position word')
    out: List[str] = []
    keys = set()  # loaders drop case-insensitive duplicates: avoid them
    for _ in range(50):
        if len(out) == num:
            break
        noun = pick(_NOUNS[track.actor])
        parts = {
            'np': pick(('the {} {}', 'a {} {}', '{} {}')).format(
                track.colour, noun),
            'act': pick(_ACTION_PHRASES[track.action]),
            'pos': pick(_POSITION_PHRASES[pick(positions)])
            if positions else '',
        }
        text = ' '.join(parts[p] for p in pick(forms).split())
        # annotator-like variety (the loader must cope with both)
        if rng.random() < 0.15:
            text = text[0].upper() + text[1:]
        if rng.random() < 0.1:
            text += '.'
        key = text.lower().rstrip('.')
        if key not in keys:
            keys.add(key)
            out.append(text)
    return out


def _annotated_frames(rng: np.random.Generator, T: int) -> List[int]:
    """3-5 distinct 1-based frames spread over the video, like A2D."""
    n = int(rng.integers(3, 6))
    margin = min(3, T // 8)
    lo, hi = 1 + margin, T - margin
    base = np.linspace(lo, hi, n)
    jitter = rng.integers(-1, 2, size=n)
    frames = sorted({int(np.clip(round(b) + j, 1, T))
                     for b, j in zip(base, jitter)})
    return frames


def _background(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    """A dark, tinted, smoothly shaded background, (H, W, 3) uint8 BGR."""
    level = rng.uniform(25, 70)
    tint = rng.uniform(-12, 12, size=3)
    gx, gy = rng.uniform(-15, 15, size=2)
    xx = np.linspace(-1, 1, W)[None, :, None]
    yy = np.linspace(-1, 1, H)[:, None, None]
    bg = level + tint[None, None, :] + gx * xx + gy * yy
    return np.clip(np.round(bg), 0, 255).astype(np.uint8)


def _video_id(rng: np.random.Generator, used: set) -> str:
    while True:
        vid = ''.join(_ID_CHARS[i]
                      for i in rng.integers(len(_ID_CHARS), size=11))
        if vid not in used:
            used.add(vid)
            return vid


def _make_scene(seed: int, split: int, index: int, video_id: str,
                subset: int, missed: bool, kind: str, T: int, H: int,
                W: int) -> _Scene:
    """One video, reproducible from ``(seed, split, index)`` alone."""
    rng = np.random.default_rng([seed, split, index])
    sampler = _SceneSampler(rng, T, H, W)
    for _ in range(_MAX_TRIES):
        tracks, cues = sampler.sample(kind)
        annotated = _annotated_frames(rng, T)
        labels = np.zeros((T, H, W), np.uint8)
        for t in range(T):
            for k, tr in enumerate(tracks):
                draw_actor(labels[t], tr, t, k + 1)
        scene = _Scene(video_id, subset, missed, kind, tracks, cues, [],
                       annotated, labels, _background(rng, H, W))
        present = [scene.present(f) for f in annotated]
        seen = set(k for p in present for k in p)
        # every annotated frame holds someone, every actor is annotated
        # somewhere, the cue pair is in every annotated frame
        pair = [k for k, c in enumerate(cues) if c != 'none']
        if (all(present) and len(seen) == len(tracks)
                and all(k in p for p in present for k in pair)):
            break
    else:
        raise RuntimeError(f'could not sample a valid {kind!r} scene for '
                           f'video {video_id} after {_MAX_TRIES} tries')
    for tr, cue in zip(tracks, cues):
        words = _position_words(tr, T, H, W)
        if cue == 'position':
            # the pair's own axis only (each is in its half throughout)
            axis_words = (('left', 'right'), ('top', 'bottom'))
            words = [w for w in words if w in axis_words[sampler.pair_axis]]
        scene.sentences.append(
            _sentences(rng, tr, cue, words, SENTENCES_PER_ACTOR))
    return scene


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------
def _write_bytes(path: str, data: bytes) -> None:
    with open(path, 'wb') as f:
        f.write(data)


def _write_video(path: str, frames: np.ndarray) -> None:
    """Write (T, H, W, 3) BGR frames as 'mp4v' and check they decode."""
    T, H, W = frames.shape[:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), FPS,
                             (W, H))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot open an mp4v VideoWriter for '
                           f'{path} (is FFmpeg support built in?)')
    for frame in frames:
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    cap = cv2.VideoCapture(path)
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if frame.shape != (H, W, 3):
            raise RuntimeError(f'{path}: decoded frame of shape '
                               f'{frame.shape}, expected {(H, W, 3)}')
        n += 1
    cap.release()
    if n != T:
        raise RuntimeError(f'{path}: decodes to {n} frames, wrote {T}')


def _write_h5(path: str, scene: _Scene, frame: int) -> List[int]:
    """Write the annotation of one 1-based frame; return its instances."""
    ids = scene.present(frame)
    lab = scene.labels[frame - 1]
    masks = np.stack([(lab == k + 1) for k in ids]).astype(np.uint8)
    boxes = np.zeros((4, len(ids)), np.float64)
    for j, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        boxes[:, j] = (xs.min(), ys.min(), xs.max(), ys.max())
    re_mask = masks.transpose(0, 2, 1)  # (N, W, H) as A2D stores it
    if len(ids) == 1:
        re_mask = re_mask[0]
    codes = np.array([scene.tracks[k].code for k in ids], np.int64)
    with h5py.File(path, 'w') as f:
        kw = dict(track_times=False)
        f.create_dataset('instance', data=np.array(ids, np.int64), **kw)
        # gzip (deterministic) keeps the binary masks ~20x smaller
        f.create_dataset(
            'reMask',
            data=np.ascontiguousarray(re_mask),
            compression='gzip',
            compression_opts=4,
            **kw)
        f.create_dataset('reBBox', data=boxes, **kw)
        f.create_dataset('id', data=codes, **kw)
    return ids


def _write_dataset(root: str, scenes: List[_Scene], params: dict) -> dict:
    """Write every file of the dataset under ``root``; return the meta."""
    release = osp.join(root, 'Release')
    clips = osp.join(release, 'clips320H')
    ann_root = osp.join(root, 'a2d_annotation_with_instances')
    os.makedirs(clips)
    os.makedirs(ann_root)
    T, H, W = params['num_frames'], params['height'], params['width']
    rows, ann_rows, instances, videos = [], [], [], {}
    for scene in sorted(scenes, key=lambda s: s.video_id):
        vid = scene.video_id
        _write_video(osp.join(clips, vid + '.mp4'), scene.frames())
        rows.append(f'{vid},{scene.tracks[0].code},0,'
                    f'{math.ceil(T / FPS)},{H},{W},{T},'
                    f'{len(scene.annotated)},{scene.subset}')
        present = {}
        if scene.missed:
            # sentences but no masks: a loader that does not drop the
            # listed videos fails on the missing mask folder
            for k in range(len(scene.tracks)):
                for sent in scene.sentences[k]:
                    ann_rows.append(f'{vid},{k},{sent}')
        else:
            os.makedirs(osp.join(ann_root, vid))
            for frame in scene.annotated:
                present[frame] = _write_h5(
                    osp.join(ann_root, vid, f'{frame:05d}.h5'), scene,
                    frame)
            for k, (tr, cue) in enumerate(zip(scene.tracks, scene.cues)):
                frames_in = [f for f in scene.annotated if k in present[f]]
                for sent in scene.sentences[k]:
                    ann_rows.append(f'{vid},{k},{sent}')
                instances.append(
                    dict(
                        video_id=vid,
                        instance_id=k,
                        subset=scene.subset,
                        scene=scene.kind,
                        cue=cue,
                        colour=tr.colour,
                        actor=tr.actor,
                        action=tr.action,
                        code=tr.code,
                        sentences=scene.sentences[k],
                        frames=frames_in))
        videos[vid] = dict(
            subset=scene.subset,
            missed=scene.missed,
            scene=scene.kind,
            annotated_frames=scene.annotated,
            num_instances=len(scene.tracks),
            num_sentences=sum(len(x) for x in scene.sentences))
    _write_bytes(
        osp.join(release, 'videoset.csv'),
        ''.join(r + '\n' for r in rows).encode('utf-8'))
    _write_bytes(
        osp.join(root, 'a2d_annotation.txt'),
        ''.join(r + '\n' for r in ['video_id,instance_id,query'] +
                ann_rows).encode('utf-8'))
    missed = sorted(s.video_id for s in scenes if s.missed)
    _write_bytes(
        osp.join(root, 'a2d_missed_videos.txt'),
        '\n'.join(missed).encode('utf-8'))
    meta = dict(
        format=META_FORMAT,
        version=META_VERSION,
        params=params,
        metainfo=dict(actors=list(ACTORS), actions=list(ACTIONS)),
        colours={k: list(v) for k, v in COLOURS.items()},
        videos=videos,
        instances=instances,
        stats=_stats(instances, videos, params))
    _write_bytes(
        osp.join(root, META_FILE),
        (json.dumps(meta, indent=1, sort_keys=True) + '\n').encode('utf-8'))
    return meta


def _stats(instances: List[dict], videos: dict, params: dict) -> dict:
    """Counts per split: videos, instances, sentences, samples, cues."""
    stats = {}
    for subset, name in ((0, 'train'), (1, 'test')):
        inst = [i for i in instances if i['subset'] == subset]
        vids = [v for v in videos.values() if v['subset'] == subset]
        samples = {c: 0 for c in CUES}
        per_cue = {c: 0 for c in CUES}
        for i in inst:
            per_cue[i['cue']] += 1
            samples[i['cue']] += len(i['sentences']) * len(i['frames'])
        stats[name] = dict(
            videos=sum(not v['missed'] for v in vids),
            missed_videos=sum(v['missed'] for v in vids),
            missed_sentences=sum(
                v['num_sentences'] for v in vids if v['missed']),
            annotated_frames=sum(
                len(v['annotated_frames']) for v in vids if not v['missed']),
            instances=len(inst),
            sentences=sum(len(i['sentences']) for i in inst),
            samples=sum(samples.values()),
            instances_per_cue=per_cue,
            samples_per_cue=samples,
            scenes={
                k: sum(v['scene'] == k and not v['missed'] for v in vids)
                for k in CUES
            })
    return stats


def _check_args(num_train, num_test, num_missed, num_frames, height, width):
    for name, value, low in (('num_train', num_train, 0),
                             ('num_test', num_test, 0),
                             ('num_missed', num_missed, 0),
                             ('num_frames', num_frames, 8),
                             ('height', height, 32), ('width', width, 32)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f'{name} must be an integer >= {low}, got '
                             f'{value!r}')
    for name, value in (('height', height), ('width', width)):
        if value % 2:
            raise ValueError(f'{name} must be even (mp4v needs even frame '
                             f'sizes), got {value}')
    if num_train + num_test == 0:
        raise ValueError('num_train + num_test must be > 0')


def generate_synthetic_a2d(out_dir: str,
                           seed: int = 0,
                           num_train: int = 480,
                           num_test: int = 50,
                           num_frames: int = 32,
                           height: int = 96,
                           width: int = 128,
                           num_missed: int = 2,
                           overwrite: bool = False) -> dict:
    """Generate the synthetic dataset into ``out_dir`` (see module doc).

    Args:
        out_dir (str): data root to create (e.g. ``data/synthetic_a2d``).
        seed (int): random seed; the same arguments give the same bytes.
        num_train (int): labelled training videos (subset 0).
        num_test (int): labelled test videos (subset 1).
        num_frames (int): frames per video, >= 8.
        height (int): frame height in px, even, >= 32.
        width (int): frame width in px, even, >= 32.
        num_missed (int): extra videos listed in ``a2d_missed_videos.txt``
            (alternately subset 0 and 1): in ``videoset.csv`` with a clip
            and sentences but without a mask folder, so that a loader which
            does not drop them fails (the real file has no sentences for
            its 28 missed videos; here they have some on purpose).
        overwrite (bool): replace a non-empty ``out_dir``; without it a
            non-empty ``out_dir`` raises :class:`FileExistsError`.

    Returns:
        dict: the content of ``synthetic_meta.json`` (``stats`` holds the
        counts per split).
    """
    _check_args(num_train, num_test, num_missed, num_frames, height, width)
    out_dir = osp.abspath(out_dir)
    if osp.exists(out_dir):
        if not osp.isdir(out_dir):
            raise FileExistsError(f'{out_dir} exists and is not a directory')
        if os.listdir(out_dir) and not overwrite:
            raise FileExistsError(f'{out_dir} exists and is not empty; pass '
                                  'overwrite=True (--overwrite) to replace '
                                  'it')
    params = dict(
        seed=int(seed),
        num_train=int(num_train),
        num_test=int(num_test),
        num_missed=int(num_missed),
        num_frames=int(num_frames),
        height=int(height),
        width=int(width),
        fps=FPS,
        sentences_per_actor=SENTENCES_PER_ACTOR)

    # ids first, in a fixed order: train, test, missed
    id_rng = np.random.default_rng([seed, 99])
    used: set = set()
    jobs = []
    for split, count in ((0, num_train), (1, num_test), (2, num_missed)):
        for i in range(count):
            vid = _video_id(id_rng, used)
            if split < 2:
                subset, missed, kind = split, False, CUES[i % len(CUES)]
            else:
                subset, missed, kind = i % 2, True, 'none'
            jobs.append((split, i, vid, subset, missed, kind))
    scenes = [
        _make_scene(seed, split, i, vid, subset, missed, kind, num_frames,
                    height, width)
        for split, i, vid, subset, missed, kind in jobs
    ]

    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    name = osp.basename(out_dir)
    tmp = tempfile.mkdtemp(prefix=f'.{name}.tmp-', dir=parent)
    try:
        meta = _write_dataset(tmp, scenes, params)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if osp.exists(out_dir):
            trash = tempfile.mkdtemp(prefix=f'.{name}.old-', dir=parent)
            os.replace(out_dir, osp.join(trash, name))
            try:
                os.replace(tmp, out_dir)
            except OSError:
                os.replace(osp.join(trash, name), out_dir)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def load_synthetic_meta(data_root: str) -> dict:
    """Read ``synthetic_meta.json`` of a generated dataset."""
    path = osp.join(data_root, META_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found: {data_root} is not a '
                                'dataset written by generate_synthetic_a2d')
    with open(path, encoding='utf-8') as f:
        meta = json.load(f)
    if meta.get('format') != META_FORMAT or meta.get(
            'version') != META_VERSION:
        raise ValueError(f'{path}: format {meta.get("format")!r} version '
                         f'{meta.get("version")!r}, expected '
                         f'{META_FORMAT!r} version {META_VERSION}')
    return meta


def instance_cues(meta_or_root) -> Dict[Tuple[str, int], str]:
    """Map ``(video_id, instance_id)`` to its cue (``none`` / ``position``
    / ``motion``), from a meta dict or a data root."""
    meta = (
        load_synthetic_meta(meta_or_root)
        if isinstance(meta_or_root, str) else meta_or_root)
    return {(i['video_id'], int(i['instance_id'])): i['cue']
            for i in meta['instances']}


def format_stats(meta: dict) -> str:
    """Human-readable summary of a generated dataset."""
    p = meta['params']
    lines = [
        f"synthetic A2D, seed {p['seed']}: {p['num_frames']} frames of "
        f"{p['height']}x{p['width']} px at {p['fps']} fps, "
        f"{p['sentences_per_actor']} sentences per actor",
        f"actors {tuple(meta['metainfo']['actors'])}",
        f"actions {tuple(meta['metainfo']['actions'])}",
    ]
    for split, s in meta['stats'].items():
        lines.append(
            f"{split}: {s['videos']} videos (+{s['missed_videos']} missed), "
            f"{s['annotated_frames']} annotated frames, "
            f"{s['instances']} instances, {s['sentences']} sentences, "
            f"{s['samples']} samples; scenes {s['scenes']}; "
            f"samples per cue {s['samples_per_cue']}")
    return '\n'.join(lines)
