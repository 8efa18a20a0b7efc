# The tiny full model with a 2-D video encoder and the fine ConvLSTM on
# frame differences, on the embedded synthetic data. No convolution of the
# encoder mixes frames (the stem (1, 7, 7), every block (1, 3, 3): a
# half-width ResNet-18 on each frame), so the temporal branch is the only
# part that sees their order, and fed [x_t, x_t - x_(t-1)] it reads the
# motion scenes: 3 seeds, motion P@0.5 80.7 +- 0.4 against 34.5 +- 12.7
# without the branch, colour / shape P@0.5 92.0 +- 0.7 against the main
# config's 89.6 +- 1.7 (configs/cmdyconv/README.md). Train and score it
# like the main config:
#   python tools/main_job.py --config THIS_CONFIG --frame-level-only
_base_ = ['./dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py']

model = dict(
    backbone=dict(
        backbone=dict(
            conv1_kernel=(1, 7, 7),
            inflate=((0, 0), (0, 0), (0, 0)))),
    neck=dict(skip_lstm=dict(frame_diff=True)))
