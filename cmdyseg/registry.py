# Copyright (c) cmdyseg contributors. All rights reserved.
"""cmdyseg's registry nodes, children of mmengine's root registries.

Every node names the module(s) that register into it (``locations``):
mmengine imports those on first use in the ``cmdyseg`` scope, because it
cannot guess them for a scope it does not know. Modules of other OpenMMLab
projects stay reachable through their scope prefix, e.g.
``type='mmaction.ResNet3d'``.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

# Where each kind of module lives. Kept in one table so that tests can
# check that every location imports (a wheel missing one would fail there).
LOCATIONS = dict(
    model=['cmdyseg.models'],
    dataset=['cmdyseg.datasets'],
    transform=['cmdyseg.datasets.transforms'],
    metric=['cmdyseg.evaluation'],
    visualizer=['cmdyseg.visualization'],
    inferencer=['cmdyseg.apis'],
    hook=['cmdyseg.engine'],
)

DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=LOCATIONS['dataset'])
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=MMENGINE_DATA_SAMPLERS,
    locations=LOCATIONS['dataset'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, locations=LOCATIONS['transform'])

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, locations=LOCATIONS['model'])
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    locations=LOCATIONS['model'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer',
    parent=MMENGINE_WEIGHT_INITIALIZERS,
    locations=LOCATIONS['model'])
TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, locations=LOCATIONS['model'])

METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, locations=LOCATIONS['metric'])
EVALUATOR = Registry(
    'evaluator', parent=MMENGINE_EVALUATOR, locations=LOCATIONS['metric'])

VISUALIZERS = Registry(
    'visualizer',
    parent=MMENGINE_VISUALIZERS,
    locations=LOCATIONS['visualizer'])
VISBACKENDS = Registry(
    'vis_backend',
    parent=MMENGINE_VISBACKENDS,
    locations=LOCATIONS['visualizer'])

INFERENCERS = Registry(
    'inferencer',
    parent=MMENGINE_INFERENCERS,
    locations=LOCATIONS['inferencer'])

HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=LOCATIONS['hook'])
