# Copyright (c) cmdyseg contributors. All rights reserved.
from .inception_i3d import InceptionI3D
from .resnet3d_encoder import ResNet3dEncoder
from .swin3d_encoder import Swin3dEncoder

__all__ = ['InceptionI3D', 'ResNet3dEncoder', 'Swin3dEncoder']
