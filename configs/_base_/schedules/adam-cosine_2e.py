# The tiny configs' schedule: Adam, lr 1e-3 at batch 8, 2 epochs, the
# learning rate annealed per iteration (cosine) to 1e-5. Two epochs of the
# default synthetic data train in minutes on a few CPU cores, and many
# videos seen twice generalise better than few videos seen often
# (configs/cmdyconv/README.md).
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
# A scheduler without `end` runs to the end of training: mmengine's Runner
# sets its `end` to train_cfg.max_epochs (after --cfg-options) and
# CosineAnnealingLR then takes T_max = end - begin, so e.g.
# --cfg-options train_cfg.max_epochs=4 anneals over the 4 epochs. Do not
# set T_max or end here.
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# --auto-scale-lr scales lr by (real batch size) / 8
auto_scale_lr = dict(enable=False, base_batch_size=8)
