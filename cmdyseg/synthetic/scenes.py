# Copyright (c) cmdyseg contributors. All rights reserved.
"""Scene sampling of the synthetic data: actors, their motions, which cue
tells them apart, and the sentences that refer to them.

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
each actor (later actors occlude earlier ones), drawn by :mod:`.render`.

A scene depends only on ``(seed, split, index)`` (per-video random
streams), so the test scenes do not change with ``num_train`` (their video
ids, drawn in order from one stream of ``seed``, do).
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .render import render_background, render_frames, render_labels

ACTORS = ('circle', 'square', 'triangle')
ACTIONS = ('moving_left', 'moving_right', 'moving_up', 'moving_down',
           'bouncing', 'rotating', 'standing')
#: ``metainfo`` to give :class:`A2DSentencesDataset` for this data.
SYNTHETIC_A2D_METAINFO = dict(actors=ACTORS, actions=ACTIONS)

CUES = ('none', 'position', 'motion')

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


SENTENCES_PER_ACTOR = 2
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


@dataclass
class Scene:
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
        return render_frames(self.labels,
                             [COLOURS[tr.colour] for tr in self.tracks],
                             self.background)

    def present(self, frame: int) -> List[int]:
        """Instance ids visible in 1-based ``frame``, ascending."""
        lab = self.labels[frame - 1]
        return [k for k in range(len(self.tracks)) if (lab == k + 1).any()]


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


def _video_id(rng: np.random.Generator, used: set) -> str:
    while True:
        vid = ''.join(_ID_CHARS[i]
                      for i in rng.integers(len(_ID_CHARS), size=11))
        if vid not in used:
            used.add(vid)
            return vid


def _make_scene(seed: int, split: int, index: int, video_id: str,
                subset: int, missed: bool, kind: str, T: int, H: int,
                W: int) -> Scene:
    """One video, reproducible from ``(seed, split, index)`` alone."""
    rng = np.random.default_rng([seed, split, index])
    sampler = _SceneSampler(rng, T, H, W)
    for _ in range(_MAX_TRIES):
        tracks, cues = sampler.sample(kind)
        annotated = _annotated_frames(rng, T)
        labels = render_labels(tracks, T, H, W)
        scene = Scene(video_id, subset, missed, kind, tracks, cues, [],
                      annotated, labels, render_background(rng, H, W))
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


def sample_scenes(seed: int, num_train: int, num_test: int, num_missed: int,
                  num_frames: int, height: int, width: int) -> List[Scene]:
    """Every video of a dataset, in the order train, test, missed.

    Video ids are drawn first, in that order, from one stream of ``seed``;
    the kinds of the labelled videos cycle through :data:`CUES` (a third of
    each split per kind); the ``num_missed`` videos (in the dataset's list
    of videos without masks) alternate between subsets 0 and 1 and are of
    kind ``none``.
    """
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
    return [
        _make_scene(seed, split, i, vid, subset, missed, kind, num_frames,
                    height, width)
        for split, i, vid, subset, missed, kind in jobs
    ]
