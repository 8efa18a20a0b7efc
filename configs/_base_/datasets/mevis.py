# MeViS (Ding et al. 2023), as distributed (see cmdyseg.datasets.MeViSDataset,
# docs/prepare_datasets.md). An expression may refer to several objects:
# its ground truth is the union of their masks (empty on some frames).
#   train:   one sample per (video, expression, frame), clip around it.
#   valid_u: 50 videos with masks: J&F here (the default test split).
#   valid:   140 videos, masks private: write the server's files with
#              python tools/test.py CONFIG CHECKPOINT --format-only \
#                  --out DIR --cfg-options test_dataloader.dataset.split=valid
# Leaf configs set test_cfg = dict(type='ReferVideoTestLoop').
dataset_type = 'MeViSDataset'
data_root = 'data/mevis'
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
        split='valid_u',
        pipeline=test_pipeline,
        test_mode=True))
test_evaluator = dict(type='JFMetric')
# tools/test.py --out: MeViS's server takes the video folders at the root
# of the zip (its README's sample submission), not under Annotations/
submission_cfg = dict(archive_root='')
