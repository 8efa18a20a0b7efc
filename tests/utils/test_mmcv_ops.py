# Copyright (c) cmdyseg contributors. All rights reserved.
"""mmcv must be installed *with* its compiled ops, and they must be right."""
import pytest
import torch
from reference_ops import modulated_deform_conv2d_reference


@pytest.mark.parametrize('groups,deform_groups', [(1, 1), (2, 2), (4, 2)])
def test_modulated_deform_conv2d_matches_reference(groups, deform_groups):
    from mmcv.ops import modulated_deform_conv2d
    torch.manual_seed(groups * 10 + deform_groups)
    b, c, h, w, o, k = 2, 8, 7, 9, 4, 3
    x = torch.randn(b, c, h, w, dtype=torch.float64, requires_grad=True)
    # offsets of a few pixels, some samples falling outside the image
    offset = (3 * torch.randn(b, deform_groups * 2 * k * k, h, w,
                              dtype=torch.float64)).requires_grad_()
    mask = torch.rand(b, deform_groups * k * k, h, w,
                      dtype=torch.float64).requires_grad_()
    weight = torch.randn(o, c // groups, k, k, dtype=torch.float64,
                         requires_grad=True)
    bias = torch.randn(o, dtype=torch.float64, requires_grad=True)
    args = (1, 1, 1)  # stride, padding, dilation

    out = modulated_deform_conv2d(x, offset, mask, weight, bias, *args,
                                  groups, deform_groups)
    ref = modulated_deform_conv2d_reference(
        x, offset, mask, weight, bias, *args, groups=groups,
        deform_groups=deform_groups)
    assert out.shape == (b, o, h, w)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-8)
    # the offsets matter (guards against a kernel that ignores them)
    no_offset = modulated_deform_conv2d(x, torch.zeros_like(offset), mask,
                                        weight, bias, *args, groups,
                                        deform_groups)
    assert (no_offset - out).abs().max() > 1e-3

    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, offset, mask, weight, bias),
                                grad_out)
    ref_grads = torch.autograd.grad(ref, (x, offset, mask, weight, bias),
                                    grad_out)
    names = ('input', 'offset', 'mask', 'weight', 'bias')
    for name, g, rg in zip(names, grads, ref_grads):
        # the offset gradient is not defined at integer sample positions;
        # random offsets avoid them almost surely
        torch.testing.assert_close(
            g, rg, atol=1e-8, rtol=1e-6, msg=lambda m: f'{name}: {m}')
