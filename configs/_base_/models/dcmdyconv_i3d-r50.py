# Table 3, "+ DCMDyConv": the full model without the temporal branch.
_base_ = ['./dcmdyconv-temporal_i3d-r50.py']
model = dict(neck=dict(use_temporal=False))
