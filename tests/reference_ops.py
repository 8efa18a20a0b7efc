# Copyright (c) cmdyseg contributors. All rights reserved.
"""Written-out reference implementations used by the tests as oracles.

Nothing here is fast; everything is spelled out so that it can be checked by
reading. Tensors are float64 in the tests that use them.
"""
import torch


def bilinear_sample(img, y, x):
    """Sample ``img`` (C, H, W) at real-valued positions ``y``, ``x`` (same
    shape S) with zero padding outside the image: the four integer
    neighbours are weighted by the usual bilinear weights and any neighbour
    outside [0, H) x [0, W) contributes zero. Returns (C, *S)."""
    c, h, w = img.shape
    y0 = torch.floor(y)
    x0 = torch.floor(x)
    out = img.new_zeros((c, ) + tuple(y.shape))
    for dy in (0, 1):
        for dx in (0, 1):
            yy = y0 + dy
            xx = x0 + dx
            wy = 1 - (y - yy).abs()
            wx = 1 - (x - xx).abs()
            inside = (yy >= 0) & (yy <= h - 1) & (xx >= 0) & (xx <= w - 1)
            yi = yy.clamp(0, h - 1).long()
            xi = xx.clamp(0, w - 1).long()
            val = img[:, yi, xi]
            out = out + val * (wy * wx * inside).unsqueeze(0)
    return out


def modulated_deform_conv2d_reference(x, offset, mask, weight, bias=None,
                                      stride=1, padding=1, dilation=1,
                                      groups=1, deform_groups=1):
    """DCNv2 as mmcv defines it, written out.

    x (B, C, H, W); weight (O, C // groups, kh, kw); offset
    (B, deform_groups * 2 * kh * kw, Ho, Wo) laid out, for deform group g and
    kernel position k = i * kw + j, as (dy, dx) at channels
    g * 2K + 2k and g * 2K + 2k + 1; mask (B, deform_groups * K, Ho, Wo).
    Input channel c uses deform group c // (C // deform_groups).
    """
    b, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    k_num = kh * kw
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    base_y = (torch.arange(ho, dtype=x.dtype) * stride - padding).view(-1, 1)
    base_x = (torch.arange(wo, dtype=x.dtype) * stride - padding).view(1, -1)
    c_per_dg = c // deform_groups
    o_per_g = o // groups
    out = x.new_zeros(b, o, ho, wo)
    for n in range(b):
        # columns[c, k] = mask * x(p + p_k + offset), (C, K, Ho, Wo)
        cols = x.new_zeros(c, k_num, ho, wo)
        for g in range(deform_groups):
            chans = slice(g * c_per_dg, (g + 1) * c_per_dg)
            for i in range(kh):
                for j in range(kw):
                    k = i * kw + j
                    dy = offset[n, g * 2 * k_num + 2 * k]
                    dx = offset[n, g * 2 * k_num + 2 * k + 1]
                    y = base_y + i * dilation + dy
                    xx = base_x + j * dilation + dx
                    sampled = bilinear_sample(x[n, chans], y, xx)
                    cols[chans, k] = sampled * mask[n, g * k_num + k]
        for oc in range(o):
            g = oc // o_per_g
            chans = slice(g * cg, (g + 1) * cg)
            wk = weight[oc].reshape(cg, k_num, 1, 1)
            out[n, oc] = (cols[chans] * wk).sum(dim=(0, 1))
            if bias is not None:
                out[n, oc] += bias[oc]
    return out


def cmdyconv_reference(x, kt, kv, offset, groups):
    """R_j(p) = sum_i sum_l kT_ij kV_ijl(p) F_ij(p + l + dl(p)), one term at
    a time (eq. 11 / 12 without P)."""
    b, c, h, w = x.shape
    n = c // groups
    mask_groups = kv.shape[1] // 9
    off_groups = 1 if offset is None else offset.shape[1] // 18
    rows = torch.arange(h, dtype=x.dtype).view(h, 1).expand(h, w)
    cols = torch.arange(w, dtype=x.dtype).view(1, w).expand(h, w)
    out = []
    for s in range(b):
        per_group = []
        for j in range(groups):
            acc = torch.zeros(h, w, dtype=x.dtype)
            for i in range(n):
                ch = j * n + i
                m = ch // (c // mask_groups)
                o = ch // (c // off_groups)
                for ky in range(3):
                    for kx in range(3):
                        l = 3 * ky + kx  # noqa: E741
                        y = rows + (ky - 1)
                        xx = cols + (kx - 1)
                        if offset is not None:
                            y = y + offset[s, o * 18 + 2 * l]
                            xx = xx + offset[s, o * 18 + 2 * l + 1]
                        sample = bilinear_sample(x[s, ch:ch + 1], y, xx)[0]
                        acc = acc + kt[s, ch] * kv[s, m * 9 + l] * sample
            per_group.append(acc)
        out.append(torch.stack(per_group))
    return torch.stack(out)


def cmdyconv_inputs(b, c, g, h, w, kv_groups, off_groups, dtype, seed=0):
    """Random x, kT, kV, offsets (None without offset groups) for the
    CMDyConv tests."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=gen, dtype=dtype)
    kt = torch.rand(b, c, generator=gen, dtype=dtype) * 2 - 1
    kv = torch.rand(b, kv_groups * 9, h, w, generator=gen, dtype=dtype)
    offset = None
    if off_groups:
        # up to ~3 px, so some samples fall outside the image
        offset = 1.5 * torch.randn(
            b, off_groups * 18, h, w, generator=gen, dtype=dtype)
    return x, kt, kv, offset
