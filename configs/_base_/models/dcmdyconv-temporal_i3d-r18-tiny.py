# The tiny full model (DCMDyConv + temporal branch): deformable windows
# with one offset field, and the ConvLSTM branch switched on.
_base_ = ['./cmdyconv_i3d-r18-tiny.py']
model = dict(
    neck=dict(use_temporal=True),
    head=dict(type='DCMDyConvHead', offset_groups=1))
