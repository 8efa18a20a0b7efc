# Copyright (c) cmdyseg contributors. All rights reserved.
from .conv_lstm import ConvLSTM, ConvLSTMCell
from .temporal_decon_neck import Decon, TemporalDeconNeck

__all__ = ['ConvLSTMCell', 'ConvLSTM', 'Decon', 'TemporalDeconNeck']
