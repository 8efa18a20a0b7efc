# J-HMDB Sentences: test only (evaluated with a model trained on A2D
# Sentences), see cmdyseg.datasets.JHMDBSentencesDataset.
#
# 3 annotated frames per video, chosen uniformly; clips of clip_len = 16
# frames around each, borders padded by repetition; frames resized to
# img_scale (model configs override it). Masks of the original size are
# kept for the metric.
dataset_type = 'JHMDBSentencesDataset'
data_root = 'data/jhmdb_sentences'
clip_len = 16
img_scale = (512, 512)  # (w, h)

test_pipeline = [
    dict(type='SampleReferClip', clip_len=clip_len),
    dict(type='mmaction.RawFrameDecode'),
    dict(type='LoadJHMDBPuppetMask'),
    dict(type='mmaction.Resize', scale=img_scale, keep_ratio=False),
    dict(type='ResizeMask'),
    dict(type='PackReferSegInputs', with_ori_mask=True),
]

test_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        num_frames_per_video=3,
        pipeline=test_pipeline,
        test_mode=True))
test_evaluator = dict(type='ReferSegMetric')
# the same set when a config validates on J-HMDB
val_dataloader = test_dataloader
val_evaluator = test_evaluator
