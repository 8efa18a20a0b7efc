# Ref-DAVIS17 (Khoreva et al. 2018): DAVIS 2017 frames and masks with the
# davis_text_annotations files, read directly (see
# cmdyseg.datasets.RefDAVIS17Dataset, docs/prepare_datasets.md). Test only:
# the val split's 30 videos, every frame, each of the four expression sets
# (two annotators x first-frame / full-video) scored on its own and the
# four J&F averaged, as ReferFormer reports.
# Leaf configs set test_cfg = dict(type='ReferVideoTestLoop').
dataset_type = 'RefDAVIS17Dataset'
data_root = 'data/ref_davis17'
clip_len = 16
img_scale = (512, 512)  # (w, h)

test_pipeline = [
    dict(type='LoadListedFrames'),
    dict(type='mmaction.Resize', scale=img_scale, keep_ratio=False),
    dict(type='SampleVideoWindows', clip_len=clip_len),
    dict(type='LoadVideoObjectMasks'),
    dict(type='PackReferVideoInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        pipeline=test_pipeline,
        test_mode=True))
test_evaluator = dict(type='JFMetric', average_annotation_sets=True)
