# The paper's schedule: Adam, lr 1e-3, batch 36 (4 GPUs x 9), 10 epochs,
# lr / 10 after 6 epochs.
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[6], gamma=0.1)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# --auto-scale-lr scales lr by (real batch size) / 36
auto_scale_lr = dict(enable=False, base_batch_size=36)
