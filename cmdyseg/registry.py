# Copyright (c) cmdyseg contributors. All rights reserved.
"""cmdyseg's registry nodes, one child of every root registry of mmengine.

mmengine builds everything of a run (runner, loops, optimizer wrapper,
parameter schedulers, log processor, ...) in the default scope; a root
without a ``cmdyseg`` child makes it fall back to the root with a "Failed
to search registry with scope" warning. So every root gets a child here,
built from :data:`_CHILDREN`, and is exported under mmengine's name
(``MODELS``, ``OPTIMIZERS``, ...).

A child whose modules cmdyseg defines names the module(s) that register
into it (``locations``, from :data:`LOCATIONS`): mmengine imports those on
first use in the ``cmdyseg`` scope, because it cannot guess them for a
scope it does not know. The others have no locations and only forward to
mmengine. Modules of other OpenMMLab projects stay reachable through their
scope prefix, e.g. ``type='mmaction.ResNet3d'``.

Losses register into ``MODELS`` (as in mmseg): there is no ``LOSSES``
registry.
"""
from typing import Optional

from mmengine import registry as _mmengine_registry
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
    loop=['cmdyseg.engine'],
)

# mmengine root registry -> key of LOCATIONS (None: nothing of ours).
# yapf: disable
_CHILDREN = dict(
    # what cmdyseg defines
    MODELS='model', MODEL_WRAPPERS='model', WEIGHT_INITIALIZERS='model',
    TASK_UTILS='model', DATASETS='dataset', DATA_SAMPLERS='dataset',
    TRANSFORMS='transform', METRICS='metric', EVALUATOR='metric',
    VISUALIZERS='visualizer', VISBACKENDS='visualizer',
    INFERENCERS='inferencer', HOOKS='hook', LOOPS='loop',
    # what a run builds in the cmdyseg scope from mmengine's own modules
    RUNNERS=None, RUNNER_CONSTRUCTORS=None, STRATEGIES=None,
    OPTIMIZERS=None, OPTIM_WRAPPERS=None, OPTIM_WRAPPER_CONSTRUCTORS=None,
    PARAM_SCHEDULERS=None, LOG_PROCESSORS=None, FUNCTIONS=None)
# yapf: enable


def _child(root_name: str, location: Optional[str]) -> Registry:
    root = getattr(_mmengine_registry, root_name)
    # the scope is explicit: mmengine would infer it from the frame that
    # calls Registry(), which depends on how this helper is called
    return Registry(
        root.name,
        parent=root,
        scope='cmdyseg',
        locations=LOCATIONS[location] if location else [])


globals().update(
    {name: _child(name, loc)
     for name, loc in _CHILDREN.items()})

__all__ = ['LOCATIONS', *_CHILDREN]
