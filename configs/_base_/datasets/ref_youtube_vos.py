# Ref-YouTube-VOS (Seo et al. 2020) in its distributed layout (see
# cmdyseg.datasets.RefYouTubeVOSDataset, docs/prepare_datasets.md):
#   train: one sample per (video, expression, listed frame), a clip of
#          clip_len listed frames around it (listed frames are every 5th
#          frame of the source video); frames where the object is absent
#          are samples with an empty mask.
#   valid: the 202 videos of meta_expressions/valid not in
#          meta_expressions/test, one sample per video with all its
#          expressions, every listed frame segmented (ReferVideoTestLoop).
#          Its masks are private: write the server's files with
#            python tools/test.py CONFIG CHECKPOINT --format-only --out DIR
#          (DIR/submission.zip is what CodaLab takes).
# Leaf configs set test_cfg = dict(type='ReferVideoTestLoop').
dataset_type = 'RefYouTubeVOSDataset'
data_root = 'data/ref_youtube_vos'
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
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='valid',
        pipeline=test_pipeline,
        test_mode=True))
test_evaluator = dict(type='JFMetric')
