# Copyright (c) cmdyseg contributors. All rights reserved.
"""A small synthetic referring-segmentation dataset in the A2D layout.

The real A2D videos and masks cannot be downloaded everywhere, so the
default data of cmdyseg is generated: coloured shapes (the *actors*) that
perform simple motions (the *actions*) on a plain background, described by
sentences that name colour, shape, motion and position.

* :mod:`.scenes` samples the scenes: actors, trajectories, the cue that
  tells each actor from the others, annotated frames and sentences;
* :mod:`.render` draws them: label maps (hence masks), backgrounds, frames;
* :mod:`.writer` writes the dataset exactly as A2D Sentences distributes
  it (clips, ``.h5`` masks, CSV files) plus ``synthetic_meta.json``, and
  reads that meta back;
* :mod:`.ytvos_writer` writes the same scenes in the Ref-YouTube-VOS layout
  (JPEG frames, palette PNG masks of every frame, meta JSON files).

The defaults of :func:`generate_synthetic_a2d` (480 train + 50 test videos,
32 frames of 96 x 128 px, 3-5 annotated frames per video, 2 sentences per
actor) give about 8.6k training and 0.9k test samples (sentence x annotated
frame), a third of the videos of each scene kind: enough to learn colour,
shape, position and motion words without memorising the training videos,
small enough to generate in under half a minute and to train the
8 x 64 x 64 tiny model for two epochs on 2 CPU cores in about ten minutes.
32 frames leave room for 3-5 annotated frames whose 8-frame clips barely
overlap; at 96 x 128 px (H x W) the shapes are 17-25 px across and still
8-12 px after the resize to 64 x 64.
"""
from .render import draw_actor, render_background, render_frames, render_labels
from .scenes import (ACTIONS, ACTORS, COLOURS, CUES, SENTENCES_PER_ACTOR,
                     SYNTHETIC_A2D_METAINFO, VALID_ACTIONS, ActorTrack, Scene,
                     sample_scenes)
from .writer import (FPS, META_FILE, META_FORMAT, META_VERSION, format_stats,
                     generate_synthetic_a2d, instance_cues,
                     load_synthetic_meta, motion_pairs)
from .ytvos_writer import (YTVOS_META_FORMAT, YTVOS_META_VERSION,
                           generate_synthetic_ytvos)

__all__ = [
    'ACTIONS', 'ACTORS', 'COLOURS', 'CUES', 'FPS', 'META_FILE', 'META_FORMAT',
    'META_VERSION', 'SENTENCES_PER_ACTOR', 'SYNTHETIC_A2D_METAINFO',
    'VALID_ACTIONS', 'YTVOS_META_FORMAT', 'YTVOS_META_VERSION', 'ActorTrack',
    'Scene', 'draw_actor', 'format_stats', 'generate_synthetic_a2d',
    'generate_synthetic_ytvos', 'instance_cues', 'load_synthetic_meta',
    'motion_pairs', 'render_background', 'render_frames', 'render_labels',
    'sample_scenes'
]
