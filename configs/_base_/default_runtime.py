default_scope = 'cmdyseg'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep the checkpoint with the best validation mIoU (the paper's main
    # metric); 'auto' would pick the metric's first key, P@0.5, for which
    # mmengine cannot infer a rule
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        save_best='refer_seg/mIoU',
        rule='greater',
        max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)

vis_backends = [dict(type='LocalVisBackend')]
# no fixed `name`: the Runner names it after the experiment, so several
# runs in one process (tests, notebooks) each write to their own work dir
visualizer = dict(type='ReferSegVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
