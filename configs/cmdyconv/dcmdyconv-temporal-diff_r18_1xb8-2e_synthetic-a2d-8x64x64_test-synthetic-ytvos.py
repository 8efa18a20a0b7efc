# The main job's model (2-D encoder, fine ConvLSTM on frame differences;
# trained on the synthetic A2D layout with
# dcmdyconv-temporal-diff_r18_1xb8-2e_synthetic-a2d-8x64x64.py) tested at
# the video level on the same test scenes written in the Ref-YouTube-VOS
# layout: every frame of every expression segmented, J and F. The test
# data, pipeline, loop and metric are the I3D tiny model's video-level
# config; only the model changes, as in the training config (restated
# here: mmengine refuses a key, such as model, that two bases define).
# Generate the data, then test:
#   python tools/dataset_converters/generate_synthetic_a2d.py \
#       data/synthetic_ytvos --layout ytvos --num-train 0
#   python tools/test.py THIS_CONFIG CHECKPOINT [--out DIR]
_base_ = [
    './dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64_'
    'test-synthetic-ytvos.py'
]

model = dict(
    backbone=dict(
        backbone=dict(
            conv1_kernel=(1, 7, 7),
            inflate=((0, 0), (0, 0), (0, 0)))),
    neck=dict(skip_lstm=dict(frame_diff=True)))
