# A2D Sentences (train: subset 0, test: subset 1), read from the layout as
# distributed (see cmdyseg.datasets.A2DSentencesDataset).
#
# Clips: clip_len (N_V) = 16 frames, annotated frame at position 8, borders
# padded by repeating the first/last frame; frames resized to img_scale
# without keeping the aspect ratio (the paper's 512 x 512 input; model
# configs override it). Pixels stay uint8 RGB: the model's data
# preprocessor normalises them.
#
# To read pre-extracted frames (tools/dataset_converters/
# a2d_extract_frames.py) instead of decoding the mp4s, set
# `frame_dir='Release/frames320H'` in the datasets and use
# `frame_loading` in place of `video_loading` below.
dataset_type = 'A2DSentencesDataset'
data_root = 'data/a2d_sentences'
clip_len = 16
img_scale = (512, 512)  # (w, h)

video_loading = [
    dict(type='mmaction.OpenCVInit'),
    dict(type='SampleReferClip', clip_len=clip_len),
    dict(type='mmaction.OpenCVDecode'),
]
frame_loading = [
    dict(type='SampleReferClip', clip_len=clip_len),
    dict(type='mmaction.RawFrameDecode'),
]

train_pipeline = video_loading + [
    dict(type='LoadA2DInstanceMask'),
    dict(type='mmaction.Resize', scale=img_scale, keep_ratio=False),
    dict(type='ResizeMask'),
    # The paper uses no augmentation: flip_ratio=0. A flip also mirrors
    # the masks and swaps left/right words in the sentence (set 0.5 to use).
    dict(type='ReferFlip', flip_ratio=0.0),
    dict(type='PackReferSegInputs'),
]
test_pipeline = video_loading + [
    dict(type='LoadA2DInstanceMask'),
    dict(type='mmaction.Resize', scale=img_scale, keep_ratio=False),
    dict(type='ResizeMask'),
    dict(type='PackReferSegInputs', with_ori_mask=True),
]

train_dataloader = dict(
    batch_size=9,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

val_evaluator = dict(type='ReferSegMetric')
test_evaluator = val_evaluator
