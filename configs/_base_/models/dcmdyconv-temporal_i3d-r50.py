# The full model of the paper (Table 3, "+ DCMDyConv + Temporal"): the
# ConvLSTM temporal branch (eq. 14-15) switched on.
_base_ = ['./dcmdyconv_i3d-r50.py']
model = dict(neck=dict(use_temporal=True))
