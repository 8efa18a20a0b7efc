# Table 3, "+ CMDyConv": the text kernel modulated by a 3x3 kernel predicted
# from the video around each position (eq. 9-11), without offsets.
_base_ = ['./group-dyconv_i3d-r50.py']
model = dict(head=dict(type='CMDyConvHead'))
