# What the video benchmarks' dataset configs (ref_youtube_vos.py,
# ref_davis17.py, mevis.py) share: clips of clip_len listed frames at the
# paper's 512 x 512 input, frame samples for training (a clip around each
# (video, expression, frame), an empty mask where the object is absent),
# video samples for testing (one video with all its expressions, every
# listed frame segmented by ReferVideoTestLoop, which the leaf configs set
# as test_cfg), J&F. Each dataset config sets the dataset type, its data
# root and splits.
clip_len = 16
img_scale = (512, 512)  # (w, h)

train_pipeline = [
    dict(type='SampleReferClip', clip_len=clip_len),
    dict(type='LoadListedFrames'),
    dict(type='LoadReferObjectMask'),
    dict(type='mmaction.Resize', scale=img_scale, keep_ratio=False),
    dict(type='ResizeMask'),
    dict(type='ReferFlip', flip_ratio=0.0),
    dict(type='PackReferSegInputs'),
]
# one sample = one video and all its expressions
test_pipeline = [
    dict(type='LoadListedFrames'),
    dict(type='mmaction.Resize', scale=img_scale, keep_ratio=False),
    dict(type='SampleVideoWindows', clip_len=clip_len),
    dict(type='LoadVideoObjectMasks'),
    dict(type='PackReferVideoInputs'),
]

train_dataloader = dict(
    batch_size=9,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(split='train', pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(pipeline=test_pipeline, test_mode=True))
test_evaluator = dict(type='JFMetric')
