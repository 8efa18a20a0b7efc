# Copyright (c) cmdyseg contributors. All rights reserved.
from .a2d_sentences import (A2D_ACTIONS, A2D_ACTORS, A2DSentencesDataset,
                            parse_a2d_annotation, parse_a2d_videoset)
from .base_refer_dataset import BaseReferSegDataset, normalize_sentence
from .file_io import DataFileError
from .jhmdb_sentences import (JHMDBSentencesDataset, parse_jhmdb_annotation,
                              uniform_frame_ids)
from .rvos import (DAVIS_ANNO_SETS, BaseRVOSDataset, MeViSDataset,
                   RefDAVIS17Dataset, RefYouTubeVOSDataset,
                   parse_davis_text_annotations, parse_mevis_meta_expressions,
                   parse_ytvos_meta, parse_ytvos_meta_expressions)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'A2DSentencesDataset', 'JHMDBSentencesDataset', 'BaseReferSegDataset',
    'DataFileError', 'A2D_ACTORS', 'A2D_ACTIONS', 'parse_a2d_annotation',
    'parse_a2d_videoset', 'parse_jhmdb_annotation', 'uniform_frame_ids',
    'normalize_sentence'
]

__all__ += [
    'BaseRVOSDataset', 'RefYouTubeVOSDataset', 'RefDAVIS17Dataset',
    'MeViSDataset', 'DAVIS_ANNO_SETS', 'parse_ytvos_meta_expressions',
    'parse_ytvos_meta', 'parse_mevis_meta_expressions',
    'parse_davis_text_annotations'
]
