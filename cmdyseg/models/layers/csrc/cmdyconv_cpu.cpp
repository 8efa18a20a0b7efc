// Copyright (c) cmdyseg contributors. All rights reserved.
//
// Compiled CPU kernels of the (deformable) CMDyConv operation: the modulated
// grouped 3x3 sum of cmdyseg/models/layers/cmdyconv.py,
//
//   out[b, g, p] = sum_{c in g} sum_l mask[b, m(c), l, p]
//                  * x[b, c](p + l + offset[b, o(c), l, p])
//
// with bilinear sampling that follows mmcv's modulated_deform_conv2d
// (position (h - 1 + ky + dy, w - 1 + kx + dx); a sample outside
// (-1, H) x (-1, W) is zero and has zero gradient; neighbours outside the
// image are zero; at an integer position the offset gradient is the
// one-sided difference towards +1, what floor() gives).
//
// Layout: x comes zero-padded and channels-last, (B, H + 2, W + 2, C), so
// that the four bilinear neighbours of a sample are four contiguous vectors
// of channels (the kernels' channel loops vectorise). The mask, offsets and
// outputs keep PyTorch's (B, channels, H, W) layout; the kernels walk
// tiles of TILE pixels and transpose the mask tile of one window position
// in a small buffer, so every large tensor is read or written exactly once
// per pass (the column buffer of the unfold formulation never exists).
//
// Threads: the forward pass splits (sample, pixel tile) pairs over
// at::parallel_for; the backward pass splits samples (its scatter into the
// x gradient would race between tiles of one sample).
//
// The kernels themselves (cmdyconv_cpu_kernels.h) are compiled twice, for
// AVX2 + FMA and for the baseline x86-64 / other instruction set, and the
// first is used when the CPU has it (isa() says which).
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <vector>

namespace {

// pixels per tile (compile with -DCMDYCONV_TILE=N to change it)
#ifndef CMDYCONV_TILE
#define CMDYCONV_TILE 16
#endif
constexpr int64_t TILE = CMDYCONV_TILE;

struct Dims {
  int64_t B, C, H, W, HW, Hp, Wp, M, O, G;
  int64_t K;   // channels per offset group, C / O
  int64_t CM;  // channels per mask group, C / M
  int64_t N;   // channels per output group, C / G
};

Dims check_inputs(const at::Tensor& xcl, const at::Tensor& mask,
                  const c10::optional<at::Tensor>& offset, int64_t groups) {
  TORCH_CHECK(xcl.dim() == 4,
              "cmdyconv_cpu: x must be (B, H + 2, W + 2, C), got ",
              xcl.sizes());
  TORCH_CHECK(xcl.is_contiguous() && mask.is_contiguous(),
              "cmdyconv_cpu: x and mask must be contiguous");
  TORCH_CHECK(xcl.device().is_cpu() && mask.device().is_cpu(),
              "cmdyconv_cpu: CPU tensors only");
  TORCH_CHECK(mask.scalar_type() == xcl.scalar_type(),
              "cmdyconv_cpu: mask dtype ", mask.scalar_type(),
              " must match x's ", xcl.scalar_type());
  Dims d;
  d.B = xcl.size(0);
  d.Hp = xcl.size(1);
  d.Wp = xcl.size(2);
  d.C = xcl.size(3);
  d.H = d.Hp - 2;
  d.W = d.Wp - 2;
  d.HW = d.H * d.W;
  TORCH_CHECK(mask.dim() == 4 && mask.size(0) == d.B && mask.size(2) == d.H &&
                  mask.size(3) == d.W && mask.size(1) % 9 == 0,
              "cmdyconv_cpu: mask must be (B, M * 9, H, W) = (", d.B,
              ", M * 9, ", d.H, ", ", d.W, "), got ", mask.sizes());
  d.M = mask.size(1) / 9;
  TORCH_CHECK(d.M > 0 && d.C % d.M == 0, "cmdyconv_cpu: M = ",
              d.M, " mask groups must divide C = ", d.C);
  d.O = 1;
  if (offset.has_value()) {
    const auto& off = *offset;
    TORCH_CHECK(off.is_contiguous() && off.scalar_type() == xcl.scalar_type(),
                "cmdyconv_cpu: offset must be contiguous, with x's dtype");
    TORCH_CHECK(off.dim() == 4 && off.size(0) == d.B && off.size(2) == d.H &&
                    off.size(3) == d.W && off.size(1) % 18 == 0 &&
                    off.size(1) > 0,
                "cmdyconv_cpu: offset must be (B, O * 18, H, W) = (", d.B,
                ", O * 18, ", d.H, ", ", d.W, "), got ", off.sizes());
    d.O = off.size(1) / 18;
    TORCH_CHECK(d.C % d.O == 0, "cmdyconv_cpu: O = ", d.O,
                " offset groups must divide C = ", d.C);
  }
  TORCH_CHECK(groups > 0 && d.C % groups == 0,
              "cmdyconv_cpu: groups = ", groups, " must divide C = ", d.C);
  d.G = groups;
  d.K = d.C / d.O;
  d.CM = d.C / d.M;
  d.N = d.C / d.G;
  return d;
}

// The kernels, compiled twice: with AVX2 + FMA (GCC on x86-64; picked at
// run time when the CPU has them) and for the baseline instruction set.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CMDYCONV_HAVE_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#include "cmdyconv_cpu_kernels.h"
}  // namespace avx2
#pragma GCC pop_options
#endif

namespace baseline {
#include "cmdyconv_cpu_kernels.h"
}  // namespace baseline

bool cpu_has_avx2() {
#ifdef CMDYCONV_HAVE_AVX2
  static const bool ok =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

// -1: not chosen yet (then: AVX2 + FMA when the CPU has it), 0: baseline,
// 1: AVX2 + FMA. set_isa() overrides the choice (tests run both builds).
std::atomic<int> g_isa{-1};

bool use_avx2() {
  int v = g_isa.load();
  if (v < 0) {
    v = cpu_has_avx2() ? 1 : 0;
    g_isa.store(v);
  }
  return v == 1;
}

const char* isa() { return use_avx2() ? "avx2" : "baseline"; }

void set_isa(const std::string& name) {
  if (name == "auto") {
    g_isa.store(cpu_has_avx2() ? 1 : 0);
  } else if (name == "baseline") {
    g_isa.store(0);
  } else if (name == "avx2") {
    TORCH_CHECK(cpu_has_avx2(),
                "cmdyconv_cpu: set_isa('avx2'): this build or CPU has no "
                "AVX2 + FMA kernels");
    g_isa.store(1);
  } else {
    TORCH_CHECK(false, "cmdyconv_cpu: set_isa: unknown instruction set '",
                name, "' (expected 'auto', 'avx2' or 'baseline')");
  }
}

template <typename scalar_t>
void forward_kernel(const Dims& d, const scalar_t* xcl, const scalar_t* mask,
                    const scalar_t* off, scalar_t* out) {
#ifdef CMDYCONV_HAVE_AVX2
  if (use_avx2()) return avx2::forward_kernel(d, xcl, mask, off, out);
#endif
  baseline::forward_kernel(d, xcl, mask, off, out);
}

template <typename scalar_t>
void backward_kernel(const Dims& d, const scalar_t* gout, const scalar_t* xcl,
                     const scalar_t* mask, const scalar_t* off,
                     scalar_t* gxcl, scalar_t* gmask, scalar_t* goff) {
#ifdef CMDYCONV_HAVE_AVX2
  if (use_avx2())
    return avx2::backward_kernel(d, gout, xcl, mask, off, gxcl, gmask, goff);
#endif
  baseline::backward_kernel(d, gout, xcl, mask, off, gxcl, gmask, goff);
}

at::Tensor cmdyconv_forward(const at::Tensor& xcl, const at::Tensor& mask,
                            const c10::optional<at::Tensor>& offset,
                            int64_t groups) {
  const Dims d = check_inputs(xcl, mask, offset, groups);
  auto out = at::empty({d.B, d.G, d.H, d.W}, xcl.options());
  AT_DISPATCH_FLOATING_TYPES(xcl.scalar_type(), "cmdyconv_forward", [&] {
    forward_kernel<scalar_t>(
        d, xcl.data_ptr<scalar_t>(), mask.data_ptr<scalar_t>(),
        offset.has_value() ? offset->data_ptr<scalar_t>() : nullptr,
        out.data_ptr<scalar_t>());
  });
  return out;
}

std::vector<at::Tensor> cmdyconv_backward(
    const at::Tensor& gout, const at::Tensor& xcl, const at::Tensor& mask,
    const c10::optional<at::Tensor>& offset, int64_t groups) {
  const Dims d = check_inputs(xcl, mask, offset, groups);
  TORCH_CHECK(gout.is_contiguous() && gout.scalar_type() == xcl.scalar_type(),
              "cmdyconv_cpu: gout must be contiguous, with x's dtype");
  TORCH_CHECK(gout.dim() == 4 && gout.size(0) == d.B && gout.size(1) == d.G &&
                  gout.size(2) == d.H && gout.size(3) == d.W,
              "cmdyconv_cpu: gout must be (B, G, H, W) = (", d.B, ", ",
              d.G, ", ", d.H, ", ", d.W, "), got ", gout.sizes());
  auto gxcl = at::zeros_like(xcl);
  auto gmask = at::empty_like(mask);
  at::Tensor goff;
  if (offset.has_value()) goff = at::empty_like(*offset);
  AT_DISPATCH_FLOATING_TYPES(xcl.scalar_type(), "cmdyconv_backward", [&] {
    backward_kernel<scalar_t>(
        d, gout.data_ptr<scalar_t>(), xcl.data_ptr<scalar_t>(),
        mask.data_ptr<scalar_t>(),
        offset.has_value() ? offset->data_ptr<scalar_t>() : nullptr,
        gxcl.data_ptr<scalar_t>(), gmask.data_ptr<scalar_t>(),
        offset.has_value() ? goff.data_ptr<scalar_t>() : nullptr);
  });
  if (offset.has_value()) return {gxcl, gmask, goff};
  return {gxcl, gmask};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "cmdyseg: compiled CPU kernels of the CMDyConv operation";
  m.def("forward", &cmdyconv_forward, "CMDyConv forward (CPU)",
        py::arg("x_cl_padded"), py::arg("mask"), py::arg("offset"),
        py::arg("groups"));
  m.def("isa", &isa, "the instruction set of the kernels in use");
  m.def("set_isa", &set_isa,
        "choose the kernels: 'auto' (AVX2 + FMA when the CPU has them), "
        "'avx2' or 'baseline'",
        py::arg("name"));
  m.def("backward", &cmdyconv_backward, "CMDyConv backward (CPU)",
        py::arg("grad_out"), py::arg("x_cl_padded"), py::arg("mask"),
        py::arg("offset"), py::arg("groups"));
}
