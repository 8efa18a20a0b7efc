# Copyright (c) cmdyseg contributors. All rights reserved.
from .inference import (VideoPreprocessor, check_sentences, inference_model,
                        init_model, segment_frames)
from .inferencer import ReferSegInferencer
from .video import VideoReadError, VideoSource

__all__ = [
    'ReferSegInferencer', 'VideoPreprocessor', 'VideoReadError',
    'VideoSource', 'check_sentences', 'inference_model', 'init_model',
    'segment_frames'
]
