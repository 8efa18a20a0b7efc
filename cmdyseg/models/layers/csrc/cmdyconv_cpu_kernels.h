// Copyright (c) cmdyseg contributors. All rights reserved.
//
// The CMDyConv CPU kernels (see cmdyconv_cpu.cpp). No include guard: the
// .cpp includes this file twice, in namespaces compiled for two instruction
// sets (AVX2 + FMA and the baseline), and picks one at run time. It uses
// Dims and TILE from there.

// Bilinear plan of one sample: false when it lies outside (-1, H) x (-1, W).
template <typename scalar_t>
struct Sample {
  int64_t base;  // channels-last offset of the top-left neighbour
  scalar_t ly, lx;
};

template <typename scalar_t>
inline bool plan(const Dims& d, const scalar_t* off, int64_t b, int64_t o,
                 int64_t l, int64_t h, int64_t w, Sample<scalar_t>* s) {
  const int64_t ky = l / 3, kx = l % 3;
  // integer part first, so that zero offsets land exactly on pixels
  scalar_t py = static_cast<scalar_t>(h + ky - 1);
  scalar_t px = static_cast<scalar_t>(w + kx - 1);
  if (off != nullptr) {
    const scalar_t* ob = off + ((b * d.O + o) * 18 + 2 * l) * d.HW + h * d.W + w;
    py += ob[0];
    px += ob[d.HW];
  }
  if (!(py > -1 && py < d.H && px > -1 && px < d.W)) return false;
  const scalar_t y0 = std::floor(py), x0 = std::floor(px);
  s->ly = py - y0;
  s->lx = px - x0;
  // padded grid: row y0 + 1 in [0, H], column x0 + 1 in [0, W]
  const int64_t yq = static_cast<int64_t>(y0) + 1;
  const int64_t xq = static_cast<int64_t>(x0) + 1;
  s->base = ((b * d.Hp + yq) * d.Wp + xq) * d.C + o * d.K;
  return true;
}

// mt[t * C + c] = mask[b, m(c), l, p0 + t] for t < tp (the mask tile of
// window position l, channels-last, expanded to every channel).
template <typename scalar_t>
inline void load_mask_tile(const Dims& d, const scalar_t* mask, int64_t b,
                           int64_t l, int64_t p0, int64_t tp, scalar_t* mt) {
  if (d.CM == 1) {  // per-channel mask: a plain tile transpose
    for (int64_t m = 0; m < d.M; ++m) {
      const scalar_t* src = mask + ((b * d.M + m) * 9 + l) * d.HW + p0;
      for (int64_t t = 0; t < tp; ++t) mt[t * d.C + m] = src[t];
    }
    return;
  }
  for (int64_t m = 0; m < d.M; ++m) {
    const scalar_t* src = mask + ((b * d.M + m) * 9 + l) * d.HW + p0;
    for (int64_t t = 0; t < tp; ++t) {
      scalar_t v = src[t];
      scalar_t* dst = mt + t * d.C + m * d.CM;
      for (int64_t j = 0; j < d.CM; ++j) dst[j] = v;
    }
  }
}

template <typename scalar_t>
void forward_kernel(const Dims& d, const scalar_t* xcl, const scalar_t* mask,
                    const scalar_t* off, scalar_t* out) {
  const int64_t ntiles = (d.HW + TILE - 1) / TILE;
  at::parallel_for(0, d.B * ntiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> acc_buf(TILE * d.C), mt_buf(TILE * d.C);
    scalar_t* __restrict__ acc = acc_buf.data();
    scalar_t* __restrict__ mt = mt_buf.data();
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / ntiles;
      const int64_t p0 = (task % ntiles) * TILE;
      const int64_t tp = std::min(TILE, d.HW - p0);
      std::fill(acc, acc + tp * d.C, scalar_t(0));
      for (int64_t l = 0; l < 9; ++l) {
        load_mask_tile(d, mask, b, l, p0, tp, mt);
        for (int64_t t = 0; t < tp; ++t) {
          const int64_t h = (p0 + t) / d.W, w = (p0 + t) % d.W;
          for (int64_t o = 0; o < d.O; ++o) {
            Sample<scalar_t> s;
            if (!plan(d, off, b, o, l, h, w, &s)) continue;
            const scalar_t w00 = (1 - s.ly) * (1 - s.lx);
            const scalar_t w01 = (1 - s.ly) * s.lx;
            const scalar_t w10 = s.ly * (1 - s.lx);
            const scalar_t w11 = s.ly * s.lx;
            const scalar_t* __restrict__ v00 = xcl + s.base;
            const scalar_t* __restrict__ v01 = v00 + d.C;
            const scalar_t* __restrict__ v10 = v00 + d.Wp * d.C;
            const scalar_t* __restrict__ v11 = v10 + d.C;
            scalar_t* __restrict__ a = acc + t * d.C + o * d.K;
            const scalar_t* __restrict__ mm = mt + t * d.C + o * d.K;
            if (d.K == 1) {  // one channel per offset group: no loop
              a[0] += mm[0] * (w00 * v00[0] + w01 * v01[0] + w10 * v10[0] +
                               w11 * v11[0]);
              continue;
            }
#pragma omp simd
            for (int64_t k = 0; k < d.K; ++k) {
              a[k] += mm[k] * (w00 * v00[k] + w01 * v01[k] + w10 * v10[k] +
                               w11 * v11[k]);
            }
          }
        }
      }
      for (int64_t g = 0; g < d.G; ++g) {
        scalar_t* dst = out + (b * d.G + g) * d.HW + p0;
        for (int64_t t = 0; t < tp; ++t) {
          const scalar_t* a = acc + t * d.C + g * d.N;
          scalar_t sum = 0;
          for (int64_t n = 0; n < d.N; ++n) sum += a[n];
          dst[t] = sum;
        }
      }
    }
  });
}

template <typename scalar_t>
void backward_kernel(const Dims& d, const scalar_t* gout, const scalar_t* xcl,
                     const scalar_t* mask, const scalar_t* off,
                     scalar_t* gxcl, scalar_t* gmask, scalar_t* goff) {
  const int64_t ntiles = (d.HW + TILE - 1) / TILE;
  at::parallel_for(0, d.B, 1, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> gc_buf(TILE * d.C), mt_buf(TILE * d.C),
        gm_buf(TILE * d.C);
    scalar_t* __restrict__ gc = gc_buf.data();
    scalar_t* __restrict__ mt = mt_buf.data();
    scalar_t* __restrict__ gm = gm_buf.data();
    for (int64_t b = begin; b < end; ++b) {
      for (int64_t tile = 0; tile < ntiles; ++tile) {
        const int64_t p0 = tile * TILE;
        const int64_t tp = std::min(TILE, d.HW - p0);
        // gradient of each channel's group, channels-last
        for (int64_t g = 0; g < d.G; ++g) {
          const scalar_t* src = gout + (b * d.G + g) * d.HW + p0;
          for (int64_t t = 0; t < tp; ++t) {
            scalar_t v = src[t];
            scalar_t* dst = gc + t * d.C + g * d.N;
            for (int64_t n = 0; n < d.N; ++n) dst[n] = v;
          }
        }
        for (int64_t l = 0; l < 9; ++l) {
          load_mask_tile(d, mask, b, l, p0, tp, mt);
          std::fill(gm, gm + tp * d.C, scalar_t(0));
          for (int64_t t = 0; t < tp; ++t) {
            const int64_t h = (p0 + t) / d.W, w = (p0 + t) % d.W;
            for (int64_t o = 0; o < d.O; ++o) {
              Sample<scalar_t> s;
              scalar_t gy = 0, gxx = 0;
              if (plan(d, off, b, o, l, h, w, &s)) {
                const scalar_t ly = s.ly, lx = s.lx, hy = 1 - ly, hx = 1 - lx;
                const scalar_t w00 = hy * hx, w01 = hy * lx, w10 = ly * hx,
                               w11 = ly * lx;
                const scalar_t* __restrict__ v00 = xcl + s.base;
                const scalar_t* __restrict__ v01 = v00 + d.C;
                const scalar_t* __restrict__ v10 = v00 + d.Wp * d.C;
                const scalar_t* __restrict__ v11 = v10 + d.C;
                scalar_t* __restrict__ g00 = gxcl + s.base;
                scalar_t* __restrict__ g01 = g00 + d.C;
                scalar_t* __restrict__ g10 = g00 + d.Wp * d.C;
                scalar_t* __restrict__ g11 = g10 + d.C;
                const scalar_t* __restrict__ mm = mt + t * d.C + o * d.K;
                const scalar_t* __restrict__ gg = gc + t * d.C + o * d.K;
                scalar_t* __restrict__ gmt = gm + t * d.C + o * d.K;
                if (d.K == 1) {  // one channel per offset group: no loop
                  const scalar_t a = v00[0], bb = v01[0], c = v10[0],
                                 e = v11[0];
                  const scalar_t gs = mm[0] * gg[0];
                  gmt[0] = gg[0] * (w00 * a + w01 * bb + w10 * c + w11 * e);
                  g00[0] += w00 * gs;
                  g01[0] += w01 * gs;
                  g10[0] += w10 * gs;
                  g11[0] += w11 * gs;
                  gy = gs * (hx * (c - a) + lx * (e - bb));
                  gxx = gs * (hy * (bb - a) + ly * (e - c));
                } else {
#pragma omp simd reduction(+ : gy, gxx)
                for (int64_t k = 0; k < d.K; ++k) {
                  const scalar_t a = v00[k], bb = v01[k], c = v10[k],
                                 e = v11[k];
                  const scalar_t gs = mm[k] * gg[k];
                  gmt[k] = gg[k] * (w00 * a + w01 * bb + w10 * c + w11 * e);
                  g00[k] += w00 * gs;
                  g01[k] += w01 * gs;
                  g10[k] += w10 * gs;
                  g11[k] += w11 * gs;
                  gy += gs * (hx * (c - a) + lx * (e - bb));
                  gxx += gs * (hy * (bb - a) + ly * (e - c));
                }
                }
              }
              if (goff != nullptr) {
                scalar_t* ob =
                    goff + ((b * d.O + o) * 18 + 2 * l) * d.HW + p0 + t;
                ob[0] = gy;
                ob[d.HW] = gxx;
              }
            }
          }
          // mask gradient: sum over the channels of each mask group
          if (d.CM == 1) {
            for (int64_t m = 0; m < d.M; ++m) {
              scalar_t* dst = gmask + ((b * d.M + m) * 9 + l) * d.HW + p0;
              for (int64_t t = 0; t < tp; ++t) dst[t] = gm[t * d.C + m];
            }
            continue;
          }
          for (int64_t m = 0; m < d.M; ++m) {
            scalar_t* dst = gmask + ((b * d.M + m) * 9 + l) * d.HW + p0;
            for (int64_t t = 0; t < tp; ++t) {
              const scalar_t* src = gm + t * d.C + m * d.CM;
              scalar_t sum = 0;
              for (int64_t j = 0; j < d.CM; ++j) sum += src[j];
              dst[t] = sum;
            }
          }
        }
      }
    }
  });
}
