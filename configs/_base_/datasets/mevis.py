# MeViS (Ding et al. 2023), as distributed (see cmdyseg.datasets.MeViSDataset,
# docs/prepare_datasets.md). An expression may refer to several objects:
# its ground truth is the union of their masks (empty on some frames).
#   train:   one sample per (video, expression, frame), clip around it.
#   valid_u: 50 videos with masks: J&F here (the default test split).
#   valid:   140 videos, masks private: write the server's files with
#              python tools/test.py CONFIG CHECKPOINT --format-only \
#                  --out DIR --cfg-options test_dataloader.dataset.split=valid
# Pipelines and loaders: ./rvos_base.py. Leaf configs set
# test_cfg = dict(type='ReferVideoTestLoop').
_base_ = ['./rvos_base.py']

dataset_type = 'MeViSDataset'
data_root = 'data/mevis'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='valid_u'))
# tools/test.py --out: MeViS's server takes the video folders at the root
# of the zip (its README's sample submission), not under Annotations/
submission_cfg = dict(archive_root='')
