# Table 3, "+ DCMDyConv": the 3x3 window deforms with predicted offsets
# (eq. 12), one offset field shared by all channels.
_base_ = ['./cmdyconv_i3d-r50.py']
model = dict(head=dict(type='DCMDyConvHead', offset_groups=1))
