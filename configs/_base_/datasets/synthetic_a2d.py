# The synthetic dataset in the A2D layout (coloured shapes that move,
# bounce, rotate or stand still; see cmdyseg.synthetic),
# read by the real A2DSentencesDataset. Generate it first:
#
#   python tools/dataset_converters/generate_synthetic_a2d.py \
#       data/synthetic_a2d
#
# Actors are the shapes and actions the motions (codes: tens = actor,
# units = action, 1-based positions in `metainfo`); the same tuples are in
# data/synthetic_a2d/synthetic_meta.json. Clips: 8 frames around the
# annotated frame, resized to 64 x 64 (the tiny model's input), for training
# on a few CPU cores.
_base_ = ['./a2d_sentences.py']

data_root = 'data/synthetic_a2d'
clip_len = 8
img_scale = (64, 64)  # (w, h)
metainfo = dict(
    actors=('circle', 'square', 'triangle'),
    actions=('moving_left', 'moving_right', 'moving_up', 'moving_down',
             'bouncing', 'rotating', 'standing'))

# The base pipelines were built from the base clip_len / img_scale, so they
# are rebuilt here with the values above.
# mmaction's OpenCVInit + OpenCVDecode, with each worker keeping the
# decoded frames of the small 32-frame videos (the same frames; measured
# in configs/cmdyconv/README.md, "The CPU training step")
video_loading = [
    dict(type='CachedOpenCVInit', cache_mb=1024),
    dict(type='SampleReferClip', clip_len=clip_len),
    dict(type='CachedOpenCVDecode'),
]
frame_loading = [
    dict(type='SampleReferClip', clip_len=clip_len),
    dict(type='mmaction.RawFrameDecode'),
]
train_pipeline = video_loading + [
    dict(type='LoadA2DInstanceMask'),
    # every actor's action per pixel, for the tiny model's auxiliary head
    # (ActionSegAuxHead; labels = 1-based indices into metainfo['actions'])
    dict(type='LoadA2DActionMap'),
    dict(type='mmaction.Resize', scale=img_scale, keep_ratio=False),
    dict(type='ResizeMask', keys=('gt_mask', 'gt_action_map')),
    # Unlike the paper (no augmentation), flip half of the clips: it mirrors
    # the motion and swaps the left/right words together, and doubles the
    # scenes a small model sees (measured: configs/cmdyconv/README.md). A
    # mirrored "moving left" moves right: labels 1 and 2 swap with it.
    dict(
        type='ReferFlip',
        flip_ratio=0.5,
        label_swaps=((metainfo['actions'].index('moving_left') + 1,
                      metainfo['actions'].index('moving_right') + 1), )),
    dict(type='PackReferSegInputs', with_action_map=True),
]
test_pipeline = video_loading + [
    dict(type='LoadA2DInstanceMask'),
    dict(type='mmaction.Resize', scale=img_scale, keep_ratio=False),
    dict(type='ResizeMask'),
    dict(type='PackReferSegInputs', with_ori_mask=True),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
