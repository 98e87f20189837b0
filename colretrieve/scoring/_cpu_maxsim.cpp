// Fused MaxSim on x86 CPUs with AVX-512: each query token's best similarity on each page.
//
// Why a kernel of our own: a matmul library scores a page only after its float16 vectors were
// converted into a float32 buffer, and its kernels are tuned for wide matrices, not for the 20
// columns of one query. Here every page vector is read from memory once, converted in
// registers, and multiplied while the running maximum stays in cache, so the only traffic is
// the stored page itself.
//
// Layout of the work: 32 page vectors at a time (a "panel") are converted to float32 and
// transposed in registers, 16 x 16 at a time, so one zmm register holds one dimension of 16
// vectors. Query tokens are split into groups of at most 12; a group's accumulators (2 x 12
// zmm) stay in registers for the whole dot product, each step two fused multiply-adds per
// token of the panel's two registers by a broadcast query value. The first group transposes
// the panel between its own multiply-adds, so shuffles and arithmetic overlap; later groups
// reuse it from L1. The page's last vector stands in for missing rows of its final panel,
// which cannot change a maximum. Pages are handed over as pointers, so scattered rows of a
// memory-mapped file are scored where they lie; the lines of the next panel are prefetched
// while the current one is scored. Threads take runs of pages from a shared counter.
//
// Pages stored in the panel layout (layout.py: 32 vectors at a time, dimension-major, the
// last vector repeated to a whole panel) need no transpose at all: each step converts its
// two registers straight from the page. The shuffles of the transpose run on the same two
// ports as the multiply-adds, so dropping them is what makes this path ~20% faster.
//
// The functions are compiled for AVX-512 only (target attributes); `supported()` tells Python
// whether this CPU can run them, and Python keeps its portable path for CPUs that cannot.

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

#define AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma,f16c")))

namespace {

constexpr int LANES = 16;   // page vectors in a zmm register
constexpr int MR = 2;       // zmm registers of page vectors in a panel
constexpr int WIDTH = MR * LANES;  // page vectors in a panel (layout.py: PANEL)
constexpr int MAX_NR = 12;  // query tokens in a register tile: MR x 12 accumulators + operands < 32 zmm
constexpr int PREFETCH_PANELS = 1;  // how far ahead, in panels, the lines of a later panel are asked for

// Dimensions rounded up to whole registers; the panel and the packed query are this tall.
constexpr int padded(int dim) { return (dim + LANES - 1) / LANES * LANES; }

struct Work {
    const float* packed_q;      // token groups one after another, each (padded_dim, nr) row-major
    std::vector<int> group_first, group_size;
    int n_tokens, dim, padded_dim;
    const uint64_t* page_ptr;   // address of each page's first vector
    const int64_t* page_len;    // vectors in each page
    bool f16;
    bool panels;                // pages stored panel by panel (layout.py), float16; else row by row
    float* out;                 // out[token * out_stride + page]
    int64_t out_stride;
};

AVX512 inline void transpose16(__m512 r[16]) {
    __m512 a[16], b[16];
    for (int i = 0; i < 16; i += 2) {
        a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) {
        const __m512d a0 = _mm512_castps_pd(a[g]), a1 = _mm512_castps_pd(a[g + 1]);
        const __m512d a2 = _mm512_castps_pd(a[g + 2]), a3 = _mm512_castps_pd(a[g + 3]);
        b[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        b[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        b[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        b[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    // b[4g + c] holds, in 128-bit lane L, column 4L + c of rows 4g..4g+3.
    for (int c = 0; c < 4; ++c) {
        const __m512 lo_even = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x88);
        const __m512 lo_odd = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xdd);
        const __m512 hi_even = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x88);
        const __m512 hi_odd = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xdd);
        r[c] = _mm512_shuffle_f32x4(lo_even, hi_even, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(lo_even, hi_even, 0xdd);
        r[4 + c] = _mm512_shuffle_f32x4(lo_odd, hi_odd, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(lo_odd, hi_odd, 0xdd);
    }
}

// Vectors [0, 16) from `rows`, dimensions [d0, d0 + 16), as float32 transposed into `out`:
// out[i * stride + v] is dimension d0 + i of vector v. Dimensions outside `mask` are zero;
// vectors from `count` on repeat the last one, which cannot change a maximum.
template <bool F16>
AVX512 inline void load_block(float* out, int stride, const char* rows, int64_t row_bytes, int count, int d0,
                              __mmask16 mask) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int v = 0; v < LANES; ++v) {
        const char* row = rows + std::min(v, count - 1) * row_bytes;
        r[v] = F16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, row + d0 * 2))
                   : _mm512_maskz_loadu_ps(mask, row + d0 * 4);
    }
    transpose16(r);
#pragma GCC unroll 16
    for (int i = 0; i < LANES; ++i) _mm512_store_ps(out + i * stride, r[i]);
}

// The register tile of one token group: MR x NR accumulators, one per (register of page
// vectors, token), kept in zmm registers for a whole dot product.
template <int NR>
AVX512 __attribute__((always_inline)) inline void zero(__m512 (&acc)[MR][NR]) {
#pragma GCC unroll 24
    for (int t = 0; t < NR; ++t)
#pragma GCC unroll 2
        for (int m = 0; m < MR; ++m) acc[m][t] = _mm512_setzero_ps();
}

// One dimension: each of the panel's MR registers (`row`) times each token's value `qd[t]`.
template <int NR>
AVX512 __attribute__((always_inline)) inline void multiply_add(__m512 (&acc)[MR][NR], const __m512 (&row)[MR],
                                                               const float* qd) {
#pragma GCC unroll 24
    for (int t = 0; t < NR; ++t) {
        const __m512 b = _mm512_set1_ps(qd[t]);
#pragma GCC unroll 2
        for (int m = 0; m < MR; ++m) acc[m][t] = _mm512_fmadd_ps(row[m], b, acc[m][t]);
    }
}

// best[t] = max(best[t], every lane of the tile's accumulators for token t).
template <int NR>
AVX512 __attribute__((always_inline)) inline void fold_into(float* __restrict best, const __m512 (&acc)[MR][NR]) {
#pragma GCC unroll 24
    for (int t = 0; t < NR; ++t) {
        __m512 top = acc[0][t];
#pragma GCC unroll 2
        for (int m = 1; m < MR; ++m) top = _mm512_max_ps(top, acc[m][t]);
        _mm512_store_ps(best + t * LANES, _mm512_max_ps(_mm512_load_ps(best + t * LANES), top));
    }
}

// best[t] = max(best[t], dots of the panel's MR x 16 vectors with token t) for the NR tokens of
// one group. The panel is (padded_dim, MR x 16). With FILL it is first loaded from `rows` one
// 16-dimension block at a time, between the multiply-adds of the previous block, so the
// shuffles of the transpose and the multiply-adds run side by side; later groups reuse it.
template <int NR, bool F16, bool FILL>
AVX512 void tile(float* __restrict panel, const float* __restrict q, int dim, const char* rows, int64_t row_bytes,
                 int count, float* __restrict best, const char* later, int64_t later_bytes) {
    const int padded_dim = padded(dim);
    __m512 acc[MR][NR];
    zero(acc);
    for (int d0 = 0; d0 < padded_dim; d0 += LANES) {
        const float* block = panel + d0 * WIDTH;
        if (FILL) {
            const int64_t share = (later_bytes * LANES / padded_dim + 63) / 64 * 64;  // this block's part
            for (int64_t at = share * (d0 / LANES); at < std::min(later_bytes, share * (d0 / LANES + 1)); at += 64)
                _mm_prefetch(later + at, _MM_HINT_T0);
            const int width = std::min(LANES, dim - d0);
            const __mmask16 mask = width == LANES ? __mmask16(0xffff) : __mmask16((1u << width) - 1);
#pragma GCC unroll 2
            for (int m = 0; m < MR; ++m) {
                const int left = count - m * LANES;  // a short last panel: the page's last vector fills it
                load_block<F16>(panel + d0 * WIDTH + m * LANES, WIDTH,
                                rows + (left > 0 ? m * LANES : count - 1) * row_bytes, row_bytes, std::max(left, 1),
                                d0, mask);
            }
        }
#pragma GCC unroll 2
        for (int d = 0; d < LANES; ++d) {
            __m512 row[MR];
#pragma GCC unroll 2
            for (int m = 0; m < MR; ++m) row[m] = _mm512_load_ps(block + d * WIDTH + m * LANES);
            multiply_add(acc, row, q + (d0 + d) * NR);
        }
    }
    fold_into(best, acc);
}

using Tile = void (*)(float*, const float*, int, const char*, int64_t, int, float*, const char*, int64_t);

template <bool F16, bool FILL, std::size_t... N>
constexpr std::array<Tile, sizeof...(N)> make_tiles(std::index_sequence<N...>) {
    return {{&tile<int(N) + 1, F16, FILL>...}};
}
// [f16][fill][group size - 1]
const std::array<std::array<Tile, MAX_NR>, 2> TILES[2] = {
    {make_tiles<false, false>(std::make_index_sequence<MAX_NR>{}), make_tiles<false, true>(std::make_index_sequence<MAX_NR>{})},
    {make_tiles<true, false>(std::make_index_sequence<MAX_NR>{}), make_tiles<true, true>(std::make_index_sequence<MAX_NR>{})},
};

// One step of a panel tile: dimension d of the panel's 32 vectors with the group's NR tokens.
template <int NR, bool KEEP>
AVX512 __attribute__((always_inline)) inline void panel_step(__m512 (&acc)[MR][NR], const uint16_t* panel,
                                                             const float* q, std::ptrdiff_t d, float* keep) {
    __m512 row[MR];
#pragma GCC unroll 2
    for (int m = 0; m < MR; ++m) {
        row[m] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + d * WIDTH + m * LANES)));
        if (KEEP) _mm512_store_ps(keep + d * WIDTH + m * LANES, row[m]);
    }
    multiply_add(acc, row, q + d * NR);
}

// The first group's tile for pages stored panel by panel (scoring/layout.py): a panel's
// dimension d is 32 contiguous float16 numbers, so each step converts its two registers
// straight from the page and nothing is transposed at query time. With KEEP (more groups
// follow) it also leaves the float32 panel in `keep`, laid out as the row path's transposed
// panel, for the other groups' `tile`; it asks for the lines of the next panel.
template <int NR, bool KEEP>
AVX512 void panel_tile(const uint16_t* __restrict panel, const float* __restrict q, int dim, float* __restrict best,
                       const char* later, int64_t later_bytes, float* __restrict keep) {
    __m512 acc[MR][NR];
    zero(acc);
    const std::ptrdiff_t share = (later_bytes * LANES / padded(dim) + 63) / 64 * 64;  // one block's prefetches
    std::ptrdiff_t d = 0;
    for (; d + LANES <= dim; d += LANES) {
        for (std::ptrdiff_t at = share * (d / LANES); at < std::min<std::ptrdiff_t>(later_bytes, share * (d / LANES + 1));
             at += 64)
            _mm_prefetch(later + at, _MM_HINT_T0);
#pragma GCC unroll 16
        for (int i = 0; i < LANES; ++i) panel_step<NR, KEEP>(acc, panel, q, d + i, keep);
    }
    for (; d < dim; ++d) panel_step<NR, KEEP>(acc, panel, q, d, keep);
    fold_into(best, acc);
}

using PanelTile = void (*)(const uint16_t*, const float*, int, float*, const char*, int64_t, float*);

template <bool KEEP, std::size_t... N>
constexpr std::array<PanelTile, sizeof...(N)> make_panel_tiles(std::index_sequence<N...>) {
    return {{&panel_tile<int(N) + 1, KEEP>...}};
}
// [keep][group size - 1]
const std::array<PanelTile, MAX_NR> PANEL_TILES[2] = {make_panel_tiles<false>(std::make_index_sequence<MAX_NR>{}),
                                                      make_panel_tiles<true>(std::make_index_sequence<MAX_NR>{})};

struct Aligned {
    float* p;
    explicit Aligned(std::size_t n) : p(static_cast<float*>(std::aligned_alloc(64, ((n * 4 + 63) / 64) * 64))) {}
    ~Aligned() { std::free(p); }
};

// A cursor that runs ahead of the kernel over the same pages: the kernel asks for the cache
// lines of a later panel a few at a time while it computes. Its own reads cross 32 rows at
// once, which the hardware prefetchers do not follow, and the next candidate page may lie
// anywhere in the file.
class Ahead {
  public:
    Ahead(const uint64_t* page_ptr, const int64_t* page_len, int64_t row_bytes, int64_t page, int64_t end)
        : ptr_(page_ptr), len_(page_len), row_bytes_(row_bytes), page_(page), end_(end) {}
    // The next `rows` rows at most, not crossing a page: (address, bytes); bytes 0 at the end.
    std::pair<const char*, int64_t> next(int64_t rows) {
        while (page_ < end_ && row_ >= len_[page_]) ++page_, row_ = 0;
        if (page_ >= end_) return {nullptr, 0};
        const int64_t n = std::min(rows, len_[page_] - row_);
        const char* at = reinterpret_cast<const char*>(ptr_[page_]) + row_ * row_bytes_;
        row_ += n;
        return {at, n * row_bytes_};
    }

  private:
    const uint64_t* ptr_;
    const int64_t* len_;
    int64_t row_bytes_, page_, end_, row_ = 0;
};

// Pages are taken a run at a time from a shared counter, so a thread slowed by the machine
// (another process, a shared VM) takes fewer runs instead of holding the others up.
AVX512 void score_pages(const Work& w, std::atomic<int64_t>* next, int64_t n_pages, int64_t run) {
    Aligned panel(std::size_t(w.padded_dim) * MR * LANES);
    Aligned best(std::size_t(w.n_tokens) * LANES);
    const std::size_t groups = w.group_first.size();
    std::vector<const float*> group_q(groups);
    for (std::size_t g = 0, at = 0; g < groups; at += std::size_t(w.padded_dim) * w.group_size[g], ++g)
        group_q[g] = w.packed_q + at;
    const int64_t row_bytes = int64_t(w.dim) * (w.f16 ? 2 : 4);
    if (w.panels) {
        const int64_t panel_bytes = int64_t(w.dim) * WIDTH * 2;
        // Rows from dim to padded_dim of the kept panel stay zero: the tiles read whole blocks.
        std::fill(panel.p, panel.p + std::size_t(w.padded_dim) * WIDTH, 0.0f);
        for (int64_t begin; (begin = next->fetch_add(run)) < n_pages;) {
            const int64_t end = std::min(begin + run, n_pages);
            for (int64_t page = begin; page < end; ++page) {
                const int64_t len = w.page_len[page], n_panels = (len + WIDTH - 1) / WIDTH;
                const char* data = reinterpret_cast<const char*>(w.page_ptr[page]);
                for (int i = 0; i < w.n_tokens * LANES; ++i) best.p[i] = -INFINITY;
                for (int64_t k = 0; k < n_panels; ++k) {
                    // The next panel follows in the page; after the last, the next page's first.
                    const char* later = k + 1 < n_panels ? data + (k + 1) * panel_bytes
                                        : page + 1 < end ? reinterpret_cast<const char*>(w.page_ptr[page + 1])
                                                         : nullptr;
                    PANEL_TILES[groups > 1][w.group_size[0] - 1](
                        reinterpret_cast<const uint16_t*>(data + k * panel_bytes), group_q[0], w.dim, best.p, later,
                        later ? panel_bytes : 0, panel.p);
                    for (std::size_t g = 1; g < groups; ++g)
                        TILES[w.f16][false][w.group_size[g] - 1](panel.p, group_q[g], w.dim, nullptr, 0, 0,
                                                                  best.p + w.group_first[g] * LANES, nullptr, 0);
                }
                for (int t = 0; t < w.n_tokens; ++t)
                    w.out[t * w.out_stride + page] = len ? _mm512_reduce_max_ps(_mm512_load_ps(best.p + t * LANES)) : -INFINITY;
            }
        }
        return;
    }
    for (int64_t begin; (begin = next->fetch_add(run)) < n_pages;) {
        const int64_t end = std::min(begin + run, n_pages);
        Ahead ahead(w.page_ptr, w.page_len, row_bytes, begin, end);
        for (int i = 0; i < PREFETCH_PANELS; ++i) ahead.next(MR * LANES);
        for (int64_t page = begin; page < end; ++page) {
            const int64_t len = w.page_len[page];
            const char* data = reinterpret_cast<const char*>(w.page_ptr[page]);
            for (int i = 0; i < w.n_tokens * LANES; ++i) best.p[i] = -INFINITY;
            for (int64_t first = 0; first < len; first += MR * LANES) {
                const auto [later, later_bytes] = ahead.next(MR * LANES);
                const int count = int(std::min<int64_t>(MR * LANES, len - first));
                for (std::size_t g = 0; g < groups; ++g)
                    TILES[w.f16][g == 0][w.group_size[g] - 1](panel.p, group_q[g], w.dim, data + first * row_bytes,
                                                               row_bytes, count, best.p + w.group_first[g] * LANES,
                                                               later, later_bytes);
            }
            for (int t = 0; t < w.n_tokens; ++t)
                w.out[t * w.out_stride + page] = len ? _mm512_reduce_max_ps(_mm512_load_ps(best.p + t * LANES)) : -INFINITY;
        }
    }
}

bool cpu_supported() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

PyObject* supported(PyObject*, PyObject*) { return PyBool_FromLong(cpu_supported()); }

PyObject* token_maxima(PyObject*, PyObject* args) {
    unsigned long long q_addr, ptr_addr, len_addr, out_addr;
    int n_tokens, dim, f16, panels, n_threads;
    long long n_pages, out_stride;
    if (!PyArg_ParseTuple(args, "KiiKKLppKLi", &q_addr, &n_tokens, &dim, &ptr_addr, &len_addr, &n_pages, &f16, &panels,
                          &out_addr, &out_stride, &n_threads))
        return nullptr;
    if (panels && !f16) {
        PyErr_SetString(PyExc_ValueError, "pages stored panel by panel are float16");
        return nullptr;
    }
    if (!cpu_supported()) {
        PyErr_SetString(PyExc_RuntimeError, "this CPU lacks AVX-512; use the portable MaxSim path");
        return nullptr;
    }
    if (n_tokens <= 0 || n_pages <= 0) Py_RETURN_NONE;
    Work w;
    w.n_tokens = n_tokens;
    w.dim = dim;
    w.padded_dim = padded(dim);
    w.page_ptr = reinterpret_cast<const uint64_t*>(ptr_addr);
    w.page_len = reinterpret_cast<const int64_t*>(len_addr);
    w.f16 = f16;
    w.panels = panels;
    w.out = reinterpret_cast<float*>(out_addr);
    w.out_stride = out_stride;
    // Tokens in near-equal groups of at most MAX_NR, each packed (padded_dim, nr) so a step of
    // the dot product reads its nr query values from one cache line or two.
    const int n_groups = (n_tokens + MAX_NR - 1) / MAX_NR;
    std::vector<float> packed(std::size_t(w.padded_dim) * n_tokens, 0.0f);
    const float* q = reinterpret_cast<const float*>(q_addr);
    for (int g = 0, first = 0; g < n_groups; ++g) {
        const int size = n_tokens / n_groups + (g < n_tokens % n_groups ? 1 : 0);
        float* dst = packed.data() + std::size_t(first) * w.padded_dim;
        for (int d = 0; d < dim; ++d)
            for (int t = 0; t < size; ++t) dst[d * size + t] = q[std::size_t(first + t) * dim + d];
        w.group_first.push_back(first);
        w.group_size.push_back(size);
        first += size;
    }
    w.packed_q = packed.data();
    const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(n_threads, n_pages));
    const int64_t run = std::max<int64_t>(1, std::min<int64_t>(16, n_pages / (threads * 8)));
    std::atomic<int64_t> next{0};
    Py_BEGIN_ALLOW_THREADS;
    std::vector<std::thread> pool;
    for (int64_t i = 1; i < threads; ++i)
        pool.emplace_back(score_pages, std::cref(w), &next, n_pages, run);
    score_pages(w, &next, n_pages, run);
    for (auto& th : pool) th.join();
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

PyMethodDef METHODS[] = {
    {"supported", supported, METH_NOARGS, "Whether this CPU runs the AVX-512 kernel."},
    {"token_maxima", token_maxima, METH_VARARGS,
     "token_maxima(q, n_tokens, dim, page_ptrs, page_lens, n_pages, f16, panels, out, out_stride, threads): "
     "addresses of C-contiguous arrays; out[t, p] = max over page p's vectors of q[t] . v."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_cpu_maxsim", "Fused AVX-512 MaxSim.", -1, METHODS};

}  // namespace

PyMODINIT_FUNC PyInit__cpu_maxsim() { return PyModule_Create(&MODULE); }
