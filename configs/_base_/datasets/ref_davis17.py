# Ref-DAVIS17 (Khoreva et al. 2018): DAVIS 2017 frames and masks with the
# davis_text_annotations files, read directly (see
# cmdyseg.datasets.RefDAVIS17Dataset, docs/prepare_datasets.md). Test only:
# the val split's 30 videos, every frame, each of the four expression sets
# (two annotators x first-frame / full-video) scored on its own and the
# four J&F averaged, as ReferFormer reports.
# Pipelines and loaders: ./rvos_base.py. Leaf configs set
# test_cfg = dict(type='ReferVideoTestLoop').
_base_ = ['./rvos_base.py']

dataset_type = 'RefDAVIS17Dataset'
data_root = 'data/ref_davis17'

train_dataloader = None
test_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='val'))
test_evaluator = dict(average_annotation_sets=True)
