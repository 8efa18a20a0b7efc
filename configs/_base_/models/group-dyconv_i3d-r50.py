# Table 3, "+ Our DyConv": groupwise text kernel, pointwise conv,
# coordinates, three stacked modules with residuals.
_base_ = ['./dyconv_i3d-r50.py']
model = dict(head=dict(type='GroupDyConvHead', groups=64, num_modules=3))
