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
# Pipelines and loaders: ./rvos_base.py. Leaf configs set
# test_cfg = dict(type='ReferVideoTestLoop').
_base_ = ['./rvos_base.py']

dataset_type = 'RefYouTubeVOSDataset'
data_root = 'data/ref_youtube_vos'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='valid'))
