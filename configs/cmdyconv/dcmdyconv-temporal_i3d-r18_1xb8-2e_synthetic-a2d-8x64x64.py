# The tiny configuration: the full model (DCMDyConv + temporal branch) at
# 8 x 64 x 64 with a half-width I3D-R18 inflation of mmaction2's ResNet3d
# and GloVe 6B 50-d word vectors, trained on the embedded synthetic
# A2D-format data on 2 CPU cores. Generate the data first:
#   python tools/dataset_converters/generate_synthetic_a2d.py \
#       data/synthetic_a2d
_base_ = [
    '../_base_/models/dcmdyconv-temporal_i3d-r18-tiny.py',
    '../_base_/datasets/synthetic_a2d.py',
    '../_base_/schedules/adam-cosine_2e.py',
    '../_base_/default_runtime.py',
]

# a short run: log every 10 iterations
default_hooks = dict(logger=dict(interval=10))
# the tiny model trains in CPU processes, for which NCCL does not work
env_cfg = dict(dist_cfg=dict(backend='gloo'))
