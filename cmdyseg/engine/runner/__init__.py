# Copyright (c) cmdyseg contributors. All rights reserved.
from .video_test_loop import (ReferVideoTestLoop, encode_masks,
                              expression_records)

__all__ = ['ReferVideoTestLoop', 'encode_masks', 'expression_records']
