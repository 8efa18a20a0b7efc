# Copyright (c) cmdyseg contributors. All rights reserved.
import importlib

import pytest
import torch
from mmengine.registry import DefaultScope

from cmdyseg.registry import LOCATIONS, MODELS
from cmdyseg.utils import register_all_modules


@pytest.mark.parametrize(
    'location', sorted({loc
                        for locs in LOCATIONS.values() for loc in locs}))
def test_every_registry_location_imports(location):
    importlib.import_module(location)


def test_register_all_modules_sets_default_scope():
    register_all_modules(init_default_scope=True)
    assert DefaultScope.get_current_instance().scope_name == 'cmdyseg'


def test_mmaction_i3d_builds_through_cmdyseg_registry():
    """mmaction2's I3D (ResNet3d with I3D inflation) is reachable from the
    cmdyseg scope as ``mmaction.ResNet3d`` and runs on a small clip."""
    cfg = dict(
        type='mmaction.ResNet3d',
        depth=50,
        pretrained=None,
        pretrained2d=False,
        conv1_kernel=(5, 7, 7),
        conv1_stride_t=2,
        pool1_stride_t=2,
        inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
        zero_init_residual=False)
    with DefaultScope.overwrite_default_scope('cmdyseg'):
        model = MODELS.build(cfg)
    assert type(model).__module__.startswith('mmaction.')
    model.init_weights()
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 8, 64, 64))
    # conv1 + pool1 halve time twice, layer2 once more: 8 -> 1; /32 space
    assert out.shape == (1, 2048, 1, 2, 2)
    assert torch.isfinite(out).all()
