# The tiny configuration with the CMDyConv head (no offsets) and no temporal
# branch: isolates the effect of the context-modulated kernel.
_base_ = [
    '../_base_/models/cmdyconv_i3d-r18-tiny.py',
    '../_base_/datasets/synthetic_a2d.py',
    '../_base_/schedules/adam-cosine_2e.py',
    '../_base_/default_runtime.py',
]

# a short run: log every 10 iterations
default_hooks = dict(logger=dict(interval=10))
# the tiny model trains in CPU processes, for which NCCL does not work
env_cfg = dict(dist_cfg=dict(backend='gloo'))
