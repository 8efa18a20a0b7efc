# The main job's model (trained on the synthetic A2D layout with
# dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py) tested at
# the video level on the same test scenes written in the Ref-YouTube-VOS
# layout: every frame of every expression segmented, J and F. Generate the
# data, then test:
#   python tools/dataset_converters/generate_synthetic_a2d.py \
#       data/synthetic_ytvos --layout ytvos --num-train 0
#   python tools/test.py THIS_CONFIG CHECKPOINT [--out DIR]
_base_ = ['./dcmdyconv-temporal_i3d-r18_1xb8-2e_synthetic-a2d-8x64x64.py']

clip_len = 8
img_scale = (64, 64)  # (w, h)
test_pipeline = [
    dict(type='LoadListedFrames'),
    dict(type='mmaction.Resize', scale=img_scale, keep_ratio=False),
    dict(type='SampleVideoWindows', clip_len=clip_len),
    dict(type='LoadVideoObjectMasks'),
    dict(type='PackReferVideoInputs'),
]
test_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='RefYouTubeVOSDataset',
        data_root='data/synthetic_ytvos',
        split='valid',
        pipeline=test_pipeline,
        test_mode=True))
test_evaluator = dict(_delete_=True, type='JFMetric')
test_cfg = dict(type='ReferVideoTestLoop', batch_size=8, sentences_per_pass=8)
