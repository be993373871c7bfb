// The GPU benchmark's device part (built only by `make CUDA=1`; see sparsegrain/gpu.h).
//
// Every operand is one GEMM, Y[M][NPQ] = A[M][Kd] x B[Kd][NPQ], with B the im2col matrix
// of a random NHWC input (columns (r*S + s)*cpad + c, built on the device, not timed).
// Libraries:
//   cuBLAS     cublasGemmEx, A row-major (op T), B and Y column-major;
//   cuDNN      cudnnConvolutionForward on NHWC tensors and a KRSC filter, the algorithm
//              picked by cudnnFindConvolutionForwardAlgorithmEx;
//   cuSPARSE   cusparseSpMM on CSR, BSR and Blocked-ELL, every algorithm and B/Y order
//              the library accepts for the format; the fastest that verifies counts;
//   cuSPARSELt loaded at run time (dlopen) because it is not part of the CUDA toolkit:
//              it ships as the wheel nvidia-cusparselt-cu13 (libcusparseLt.so.0). The
//              entry points and their signatures are those of the cuSPARSELt API
//              reference (docs.nvidia.com/cuda/cusparselt/functions.html); the opaque
//              structs are given more room than any release uses.
// Every CUDA runtime call is checked; a failing runtime call ends the run (the device
// may be unusable), a library that refuses a shape or type only marks that variant.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cusparse.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "sparsegrain/gpu.h"

extern "C" enum sg_status sgi_error(enum sg_status st, const char *fmt, ...);

#define CK(x)                                                                                     \
    do {                                                                                          \
        cudaError_t e_ = (x);                                                                     \
        if (e_ != cudaSuccess) return sgi_error(SG_ERR_IO, "gpu: %s: %s", #x, cudaGetErrorString(e_)); \
    } while (0)

// ---- cuSPARSELt, declared from its API reference and loaded with dlopen ----
namespace lt {
struct alignas(16) Opaque { unsigned char data[16384]; };
typedef int (*init_t)(Opaque *);
typedef int (*destroy_t)(const Opaque *);
typedef int (*version_t)(const Opaque *, int *);
typedef int (*dense_t)(const Opaque *, Opaque *, int64_t, int64_t, int64_t, uint32_t, cudaDataType, cusparseOrder_t);
typedef int (*structured_t)(const Opaque *, Opaque *, int64_t, int64_t, int64_t, uint32_t, cudaDataType,
                            cusparseOrder_t, int /* CUSPARSELT_SPARSITY_50_PERCENT = 0 */);
typedef int (*matdestroy_t)(const Opaque *);
typedef int (*matmul_desc_t)(const Opaque *, Opaque *, cusparseOperation_t, cusparseOperation_t, const Opaque *,
                             const Opaque *, const Opaque *, const Opaque *, int /* cusparseComputeType */);
typedef int (*alg_t)(const Opaque *, Opaque *, const Opaque *, int /* CUSPARSELT_MATMUL_ALG_DEFAULT = 0 */);
typedef int (*plan_t)(const Opaque *, Opaque *, const Opaque *, const Opaque *);
typedef int (*plandestroy_t)(const Opaque *);
typedef int (*workspace_t)(const Opaque *, const Opaque *, size_t *);
typedef int (*prunecheck_t)(const Opaque *, const Opaque *, const void *, int *, cudaStream_t);
typedef int (*prune_t)(const Opaque *, const Opaque *, const void *, void *,
                       int /* CUSPARSELT_PRUNE_SPMMA_STRIP = 1 */, cudaStream_t);
typedef int (*csize_t)(const Opaque *, const Opaque *, size_t *, size_t *);
typedef int (*compress_t)(const Opaque *, const Opaque *, const void *, void *, void *, cudaStream_t);
typedef int (*matmul_t)(const Opaque *, const Opaque *, const void *, const void *, const void *, const void *,
                        const void *, void *, void *, cudaStream_t *, int32_t);
struct Api {
    void *dl = nullptr;
    init_t Init;
    destroy_t Destroy;
    version_t GetVersion;
    dense_t DenseDescriptorInit;
    structured_t StructuredDescriptorInit;
    matdestroy_t MatDescriptorDestroy;
    matmul_desc_t MatmulDescriptorInit;
    alg_t MatmulAlgSelectionInit;
    plan_t MatmulPlanInit;
    plandestroy_t MatmulPlanDestroy;
    workspace_t MatmulGetWorkspace;
    prunecheck_t SpMMAPruneCheck;
    prune_t SpMMAPrune; // optional: only to explain a failed check
    csize_t SpMMACompressedSize;
    compress_t SpMMACompress;
    matmul_t Matmul, MatmulSearch;
};
} // namespace lt

struct sg_gpu_bench {
    sg_gpu_bench_cfg cfg;
    char device[256];
    char libs[512];
    double peak;
    cudaStream_t stream;
    cudaEvent_t ev0, ev1;
    cublasHandle_t blas;
    cusparseHandle_t sparse;
    cudnnHandle_t dnn;
    lt::Api lt;
    lt::Opaque *lth; // the cuSPARSELt handle, NULL when not loaded
    char lt_state[256];
    sg_gpu_shape g;
    void *x;      // input NHWC, element type of cfg.dtype
    size_t es;    // bytes per element
    float *ref;   // reference output, column-major K x NPQ (fp32)
};

static cudaDataType ctype(sg_gpu_dtype t) {
    return t == SG_GPU_FP16 ? CUDA_R_16F : t == SG_GPU_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}
static cudnnDataType_t dnntype(sg_gpu_dtype t) {
    return t == SG_GPU_FP16 ? CUDNN_DATA_HALF : t == SG_GPU_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}
static cublasComputeType_t blascompute(sg_gpu_dtype t) {
    return t == SG_GPU_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}
static double tolerance(sg_gpu_dtype t) { return t == SG_GPU_FP32 ? 1e-3 : t == SG_GPU_BF16 ? 3e-2 : 1e-2; }

static void note_add(sg_gpu_result *r, const char *fmt, ...) {
    size_t n = strlen(r->note);
    if (n + 3 >= sizeof r->note) return;
    if (n) r->note[n++] = ';', r->note[n++] = ' ', r->note[n] = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->note + n, sizeof r->note - n, fmt, ap);
    va_end(ap);
}

// ---- device kernels ----
__device__ inline float to_f(uint16_t u, int bf16) {
    return bf16 ? __uint_as_float((unsigned)u << 16) : __half2float(__ushort_as_half(u));
}
__device__ inline float to_f(float v, int) { return v; }

// Values in [-1, 1) from a hash of the index (the input is random, reproducible by seed).
template <typename T> __global__ void fill_random(T *x, size_t n, uint64_t seed, int bf16) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint64_t z = i + seed * 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        const float v = (float)(z >> 40) * (1.0f / 8388608.0f) - 1.0f;
        if constexpr (sizeof(T) == 2) x[i] = bf16 ? __bfloat16_as_ushort(__float2bfloat16(v)) : __half_as_ushort(__float2half(v));
        else x[i] = v;
    }
}

// im2col of NHWC x: row (r*S + s)*cpad + c of column (n, p, q), channel chmap[c] (-1: zero);
// rows >= kd and columns >= npq are zero padding. Column-major (ld = kd_p) or row-major (ld = n_p).
template <typename T>
__global__ void im2col(const T *x, T *b, sg_gpu_shape g, int64_t cpad, const int *chmap, int64_t kd_p, int64_t n_p,
                       int rowmajor) {
    const int64_t npq = g.n * g.p * g.q, kd = g.r * g.s * cpad, total = kd_p * n_p;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = rowmajor ? i / n_p : i % kd_p, col = rowmajor ? i % n_p : i / kd_p;
        T v = 0;
        if (row < kd && col < npq) {
            const int64_t c = row % cpad, rs = row / cpad, r = rs / g.s, s = rs % g.s;
            const int64_t ch = chmap[c];
            const int64_t n = col / (g.p * g.q), pq = col % (g.p * g.q), p = pq / g.q, q = pq % g.q;
            const int64_t y = p * g.stride - g.pad + r, xx = q * g.stride - g.pad + s;
            if (ch >= 0 && y >= 0 && y < g.h && xx >= 0 && xx < g.w) v = x[((n * g.h + y) * g.w + xx) * g.c + ch];
        }
        b[i] = v;
    }
}

// NHWC gather of channels chmap[0..cn) (-1: zero) for the thinned cuDNN convolution.
template <typename T> __global__ void gather(const T *x, T *y, int64_t pixels, int64_t c, const int *chmap, int64_t cn) {
    const int64_t total = pixels * cn;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t px = i / cn, j = i % cn, ch = chmap[j];
        y[i] = ch >= 0 ? x[px * c + ch] : (T)0;
    }
}

// max |y - ref| and max |ref| over rows x cols; y is column-major (ld) or row-major, row i of y
// is row rowmap[i] of ref (column-major, ldr). Non-negative floats order as their bits.
template <typename T>
__global__ void compare(const T *y, int64_t ld, int rowmajor, const float *ref, int64_t ldr, const int *rowmap,
                        int64_t rows, int64_t cols, int bf16, unsigned *out) {
    const int64_t total = rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i % rows, c = i / rows;
        const float v = to_f(y[rowmajor ? r * ld + c : c * ld + r], bf16);
        const float w = ref[c * ldr + (rowmap ? rowmap[r] : r)];
        float d = fabsf(v - w);
        if (d != d) d = INFINITY;
        atomicMax(out, __float_as_uint(d));
        atomicMax(out + 1, __float_as_uint(fabsf(w)));
    }
}

static int grid_for(int64_t n) { return (int)std::min<int64_t>((n + 255) / 256, 65535 * 4); }

// ---- small RAII-free helpers: device buffers freed through a list ----
struct Bufs {
    std::vector<void *> p;
    ~Bufs() {
        for (void *q : p) cudaFree(q);
    }
    cudaError_t get(void **out, size_t bytes) {
        *out = nullptr;
        cudaError_t e = cudaMalloc(out, bytes ? bytes : 16);
        if (e == cudaSuccess) p.push_back(*out);
        return e;
    }
};

// Uploads n floats as the benchmark's element type.
static sg_status upload(sg_gpu_bench *b, Bufs &bufs, const float *h, size_t n, void **out) {
    CK(bufs.get(out, n * b->es));
    if (b->es == 2) {
        std::vector<uint16_t> t(n);
        sg_gpu_to_half(b->cfg.dtype, h, n, t.data());
        CK(cudaMemcpy(*out, t.data(), n * 2, cudaMemcpyHostToDevice));
    } else {
        CK(cudaMemcpy(*out, h, n * 4, cudaMemcpyHostToDevice));
    }
    return SG_OK;
}
static sg_status upload_int(Bufs &bufs, const int32_t *h, size_t n, int **out) {
    CK(bufs.get((void **)out, n * sizeof(int)));
    if (n) CK(cudaMemcpy(*out, h, n * sizeof(int), cudaMemcpyHostToDevice));
    return SG_OK;
}

static sg_status im2col_dev(sg_gpu_bench *b, Bufs &bufs, int64_t cpad, const int *chmap, int64_t kd_p, int64_t n_p,
                            int rowmajor, void **out) {
    CK(bufs.get(out, (size_t)kd_p * n_p * b->es));
    const int64_t n = kd_p * n_p;
    if (b->es == 2)
        im2col<uint16_t><<<grid_for(n), 256, 0, b->stream>>>((const uint16_t *)b->x, (uint16_t *)*out, b->g, cpad,
                                                             chmap, kd_p, n_p, rowmajor);
    else
        im2col<float><<<grid_for(n), 256, 0, b->stream>>>((const float *)b->x, (float *)*out, b->g, cpad, chmap, kd_p,
                                                          n_p, rowmajor);
    CK(cudaGetLastError());
    return SG_OK;
}

// Identity channel map of cpad entries (channels >= C are zero padding).
static sg_status chmap_full(sg_gpu_bench *b, Bufs &bufs, int64_t cpad, int **out) {
    std::vector<int32_t> m(cpad);
    for (int64_t c = 0; c < cpad; c++) m[c] = c < b->g.c ? (int32_t)c : -1;
    return upload_int(bufs, m.data(), m.size(), out);
}

// Compares y with the reference; sets r->max_rel_err.
static sg_status check(sg_gpu_bench *b, const void *y, int64_t ld, int rowmajor, const int *rowmap, int64_t rows,
                       sg_gpu_result *r) {
    Bufs bufs;
    unsigned *d, h[2];
    CK(bufs.get((void **)&d, 2 * sizeof(unsigned)));
    CK(cudaMemsetAsync(d, 0, 2 * sizeof(unsigned), b->stream));
    const int64_t cols = b->g.n * b->g.p * b->g.q, n = rows * cols;
    const int bf16 = b->cfg.dtype == SG_GPU_BF16;
    if (n) {
        if (b->es == 2)
            compare<uint16_t><<<grid_for(n), 256, 0, b->stream>>>((const uint16_t *)y, ld, rowmajor, b->ref, b->g.k,
                                                                  rowmap, rows, cols, bf16, d);
        else
            compare<float><<<grid_for(n), 256, 0, b->stream>>>((const float *)y, ld, rowmajor, b->ref, b->g.k, rowmap,
                                                               rows, cols, bf16, d);
        CK(cudaGetLastError());
    }
    CK(cudaMemcpyAsync(h, d, sizeof h, cudaMemcpyDeviceToHost, b->stream));
    CK(cudaStreamSynchronize(b->stream));
    float diff, mx;
    memcpy(&diff, &h[0], 4);
    memcpy(&mx, &h[1], 4);
    r->max_rel_err = mx > 0 ? diff / mx : diff;
    return SG_OK;
}

// Times fn (which returns 0 on success): warm-up runs, then the median of repeat runs,
// each between two events on the stream. *lib_fail gets fn's first non-zero status.
template <typename F> static sg_status time_call(sg_gpu_bench *b, F fn, double *ms, int *lib_fail) {
    *lib_fail = 0;
    *ms = INFINITY;
    for (int i = 0; i < b->cfg.warmup; i++)
        if ((*lib_fail = fn()) != 0) return SG_OK;
    CK(cudaStreamSynchronize(b->stream));
    std::vector<float> t;
    for (int i = 0; i < b->cfg.repeat; i++) {
        CK(cudaEventRecord(b->ev0, b->stream));
        if ((*lib_fail = fn()) != 0) return SG_OK;
        CK(cudaEventRecord(b->ev1, b->stream));
        CK(cudaEventSynchronize(b->ev1));
        float e;
        CK(cudaEventElapsedTime(&e, b->ev0, b->ev1));
        t.push_back(e);
    }
    std::sort(t.begin(), t.end());
    const size_t n = t.size();
    *ms = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    return SG_OK;
}

// Keeps the faster of a verified variant; 0 when the variant's output was wrong.
static int keep_best(sg_gpu_bench *b, sg_gpu_result *r, const char *lib, double ms, double err) {
    if (!(err <= tolerance(b->cfg.dtype))) {
        note_add(r, "%s: max rel err %.3g", lib, err);
        return 0;
    }
    if (!r->ok || ms < r->ms) {
        r->ok = 1, r->ms = ms, r->max_rel_err = err;
        snprintf(r->lib, sizeof r->lib, "%s", lib);
    }
    return 1;
}

// ---- cuBLAS: Y (m x npq, column-major, ld m) = A (m x kd row-major) x B (kd x npq column-major) ----
static sg_status run_blas(sg_gpu_bench *b, const void *a, int64_t m, int64_t kd, const void *bm, const int *rowmap,
                          sg_gpu_result *r) {
    Bufs bufs;
    void *y;
    const int64_t npq = b->g.n * b->g.p * b->g.q;
    CK(bufs.get(&y, (size_t)m * npq * b->es));
    const float one = 1, zero = 0;
    const cudaDataType t = ctype(b->cfg.dtype);
    auto fn = [&]() {
        return (int)cublasGemmEx(b->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, (int)npq, (int)kd, &one, a, t, (int)kd, bm,
                                 t, (int)kd, &zero, y, t, (int)m, blascompute(b->cfg.dtype), CUBLAS_GEMM_DEFAULT);
    };
    double ms;
    int fail;
    sg_status st = time_call(b, fn, &ms, &fail);
    if (st != SG_OK) return st;
    if (fail) {
        note_add(r, "cuBLAS: status %d", fail);
        return SG_OK;
    }
    sg_gpu_result c = {};
    if ((st = check(b, y, m, 0, rowmap, m, &c)) != SG_OK) return st;
    keep_best(b, r, "cuBLAS GemmEx", ms, c.max_rel_err);
    return SG_OK;
}

// ---- cuDNN: NHWC x (cn channels) with a KRSC filter of m filters ----
static sg_status run_dnn(sg_gpu_bench *b, const void *x, int64_t cn, const void *filt, int64_t m, const int *rowmap,
                         sg_gpu_result *r) {
    Bufs bufs;
    const sg_gpu_shape &g = b->g;
    cudnnTensorDescriptor_t xd = nullptr, yd = nullptr;
    cudnnFilterDescriptor_t wd = nullptr;
    cudnnConvolutionDescriptor_t cd = nullptr;
    const cudnnDataType_t t = dnntype(b->cfg.dtype);
    int s = 0;
    void *y = nullptr, *ws = nullptr;
    size_t wsn = 0;
    cudnnConvolutionFwdAlgoPerf_t perf[16];
    int found = 0;
    double ms = 0;
    int fail = 0;
    sg_status st = SG_OK;
    if ((s = cudnnCreateTensorDescriptor(&xd)) || (s = cudnnCreateTensorDescriptor(&yd)) ||
        (s = cudnnCreateFilterDescriptor(&wd)) || (s = cudnnCreateConvolutionDescriptor(&cd)) ||
        (s = cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, t, (int)g.n, (int)cn, (int)g.h, (int)g.w)) ||
        (s = cudnnSetFilter4dDescriptor(wd, t, CUDNN_TENSOR_NHWC, (int)m, (int)cn, (int)g.r, (int)g.s)) ||
        (s = cudnnSetConvolution2dDescriptor(cd, (int)g.pad, (int)g.pad, (int)g.stride, (int)g.stride, 1, 1,
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT)) ||
        (s = cudnnSetConvolutionMathType(cd, b->cfg.dtype == SG_GPU_FP32 ? CUDNN_FMA_MATH
                                             : b->cfg.dtype == SG_GPU_TF32 ? CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION
                                                                           : CUDNN_TENSOR_OP_MATH)) ||
        (s = cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, t, (int)g.n, (int)m, (int)g.p, (int)g.q))) {
        note_add(r, "cuDNN: %s", cudnnGetErrorString((cudnnStatus_t)s));
        goto done;
    }
    if (bufs.get(&y, (size_t)g.n * g.p * g.q * m * b->es) != cudaSuccess ||
        bufs.get(&ws, (size_t)1 << 30) != cudaSuccess) {
        st = sgi_error(SG_ERR_NOMEM, "gpu: out of device memory for cuDNN");
        goto done;
    }
    wsn = (size_t)1 << 30;
    // the library's own search over its algorithms, on these buffers (not timed)
    if ((s = cudnnFindConvolutionForwardAlgorithmEx(b->dnn, xd, x, wd, filt, cd, yd, y, 16, &found, perf, ws, wsn))) {
        note_add(r, "cuDNN find: %s", cudnnGetErrorString((cudnnStatus_t)s));
        goto done;
    }
    for (int i = 0; i < found; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > wsn) continue;
        const cudnnConvolutionFwdAlgo_t algo = perf[i].algo;
        const float one = 1, zero = 0;
        auto fn = [&]() { return (int)cudnnConvolutionForward(b->dnn, &one, xd, x, wd, filt, cd, algo, ws, wsn, &zero, yd, y); };
        if ((st = time_call(b, fn, &ms, &fail)) != SG_OK) goto done;
        if (fail) {
            note_add(r, "cuDNN algo %d: %s", (int)algo, cudnnGetErrorString((cudnnStatus_t)fail));
            continue;
        }
        sg_gpu_result c = {};
        if ((st = check(b, y, m, 0, rowmap, m, &c)) != SG_OK) goto done;
        char lib[64];
        snprintf(lib, sizeof lib, "cuDNN algo %d", (int)algo);
        if (keep_best(b, r, lib, ms, c.max_rel_err)) break; // the fastest that ran and verified (Find sorts by time)
    }
done:
    if (cd) cudnnDestroyConvolutionDescriptor(cd);
    if (wd) cudnnDestroyFilterDescriptor(wd);
    if (yd) cudnnDestroyTensorDescriptor(yd);
    if (xd) cudnnDestroyTensorDescriptor(xd);
    return st;
}

// ---- cuSPARSE SpMM: A (m x kd, sparse) x B (kd x npq) for each order and algorithm ----
static sg_status run_spmm(sg_gpu_bench *b, cusparseSpMatDescr_t A, const char *fmt, int64_t m, int64_t kd,
                          int64_t cpad, const cusparseSpMMAlg_t *algs, int nalg, sg_gpu_result *r) {
    const int64_t npq = b->g.n * b->g.p * b->g.q;
    const cudaDataType t = ctype(b->cfg.dtype);
    for (int rowmajor = 0; rowmajor < 2; rowmajor++) {
        Bufs bufs;
        int *chmap;
        void *bm, *y;
        sg_status st = chmap_full(b, bufs, cpad, &chmap);
        if (st == SG_OK) st = im2col_dev(b, bufs, cpad, chmap, kd, npq, rowmajor, &bm);
        if (st != SG_OK) return st;
        CK(bufs.get(&y, (size_t)m * npq * b->es));
        const cusparseOrder_t ord = rowmajor ? CUSPARSE_ORDER_ROW : CUSPARSE_ORDER_COL;
        cusparseDnMatDescr_t B = nullptr, Y = nullptr;
        int s;
        if ((s = cusparseCreateDnMat(&B, kd, npq, rowmajor ? npq : kd, bm, t, ord)) ||
            (s = cusparseCreateDnMat(&Y, m, npq, rowmajor ? npq : m, y, t, ord))) {
            note_add(r, "%s: dense descriptors: %s", fmt, cusparseGetErrorString((cusparseStatus_t)s));
            if (B) cusparseDestroyDnMat(B);
            continue;
        }
        for (int ai = 0; ai < nalg; ai++) {
            const float one = 1, zero = 0;
            size_t wsn = 0;
            void *ws = nullptr;
            char lib[64];
            snprintf(lib, sizeof lib, "cuSPARSE %s alg %d %s", fmt, (int)algs[ai], rowmajor ? "row" : "col");
            s = cusparseSpMM_bufferSize(b->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                        &one, A, B, &zero, Y, CUDA_R_32F, algs[ai], &wsn);
            if (s) {
                note_add(r, "%s: %s", lib, cusparseGetErrorString((cusparseStatus_t)s));
                continue;
            }
            Bufs wb;
            if (wb.get(&ws, wsn) != cudaSuccess) {
                cusparseDestroyDnMat(B), cusparseDestroyDnMat(Y);
                return sgi_error(SG_ERR_NOMEM, "gpu: out of device memory for %s's %zu-byte buffer", lib, wsn);
            }
            auto fn = [&]() {
                return (int)cusparseSpMM(b->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                         &one, A, B, &zero, Y, CUDA_R_32F, algs[ai], ws);
            };
            double ms;
            int fail;
            if ((st = time_call(b, fn, &ms, &fail)) != SG_OK) {
                cusparseDestroyDnMat(B), cusparseDestroyDnMat(Y);
                return st;
            }
            if (fail) {
                note_add(r, "%s: %s", lib, cusparseGetErrorString((cusparseStatus_t)fail));
                continue;
            }
            sg_gpu_result c = {};
            if ((st = check(b, y, rowmajor ? npq : m, rowmajor, nullptr, b->g.k, &c)) != SG_OK) {
                cusparseDestroyDnMat(B), cusparseDestroyDnMat(Y);
                return st;
            }
            keep_best(b, r, lib, ms, c.max_rel_err);
        }
        cusparseDestroyDnMat(B), cusparseDestroyDnMat(Y);
    }
    return SG_OK;
}

// ---- cuSPARSELt: the dense 2:4 matrix, padded to multiples of 16, compressed on the device ----
// After a failed check: what the library's own 2:4 pruning (strip) changes in our matrix,
// so that the note says where our pattern and the library's direction disagree.
static sg_status lt_explain(sg_gpu_bench *b, Bufs &bufs, const lt::Opaque *mm, const void *da, int64_t mp,
                            int64_t kp, sg_gpu_result *r) {
    const lt::Api &L = b->lt;
    if (!L.SpMMAPrune) {
        note_add(r, "cuSPARSELt: the matrix is not 2:4 by cusparseLtSpMMAPruneCheck");
        return SG_OK;
    }
    const size_t n = (size_t)mp * (size_t)kp;
    void *dp;
    CK(bufs.get(&dp, n * 2));
    int s = L.SpMMAPrune(b->lth, mm, da, dp, 1, b->stream);
    if (s != 0) {
        note_add(r, "cuSPARSELt: the matrix is not 2:4 by cusparseLtSpMMAPruneCheck (its prune: status %d)", s);
        return SG_OK;
    }
    std::vector<uint16_t> ours(n), theirs(n);
    CK(cudaMemcpyAsync(ours.data(), da, n * 2, cudaMemcpyDeviceToHost, b->stream));
    CK(cudaMemcpyAsync(theirs.data(), dp, n * 2, cudaMemcpyDeviceToHost, b->stream));
    CK(cudaStreamSynchronize(b->stream));
    size_t diff = 0, first = n;
    for (size_t i = 0; i < n; i++)
        if (ours[i] != theirs[i]) diff++, first = first < i ? first : i;
    if (diff)
        note_add(r, "cuSPARSELt: not 2:4 by cusparseLtSpMMAPruneCheck; its own pruning changes %zu of %zu elements, "
                    "the first at row %lld, column %lld", diff, n, (long long)(first / (size_t)kp),
                 (long long)(first % (size_t)kp));
    else
        note_add(r, "cuSPARSELt: cusparseLtSpMMAPruneCheck says not 2:4, yet its own pruning leaves the matrix unchanged");
    return SG_OK;
}

static sg_status run_lt(sg_gpu_bench *b, const float *a, int64_t cpad, sg_gpu_result *r) {
    if (!b->lth) {
        note_add(r, "cuSPARSELt: %s", b->lt_state);
        return SG_OK;
    }
    if (b->es != 2) {
        note_add(r, "cuSPARSELt: this benchmark runs it in fp16 or bf16 only");
        return SG_OK;
    }
    const lt::Api &L = b->lt;
    const sg_gpu_shape &g = b->g;
    const int64_t kd = g.r * g.s * cpad, npq = g.n * g.p * g.q;
    const int64_t mp = sg_gpu_round_up(g.k, 16), kp = sg_gpu_round_up(kd, 16), np = sg_gpu_round_up(npq, 16);
    std::vector<float> ap((size_t)mp * kp, 0.0f);
    for (int64_t i = 0; i < g.k; i++) memcpy(&ap[i * kp], a + i * kd, (size_t)kd * sizeof(float));
    Bufs bufs;
    void *da, *bm, *y, *comp, *cbuf = nullptr, *ws = nullptr;
    int *chmap, *valid;
    sg_status st = upload(b, bufs, ap.data(), ap.size(), &da);
    if (st == SG_OK) st = chmap_full(b, bufs, cpad, &chmap);
    if (st == SG_OK) st = im2col_dev(b, bufs, cpad, chmap, kp, np, 0, &bm);
    if (st != SG_OK) return st;
    CK(bufs.get(&y, (size_t)mp * np * b->es));
    CK(bufs.get((void **)&valid, sizeof(int)));
    const cudaDataType t = ctype(b->cfg.dtype);
    lt::Opaque *mA = new lt::Opaque, *mB = new lt::Opaque, *mC = new lt::Opaque, *mm = new lt::Opaque,
               *alg = new lt::Opaque, *plan = new lt::Opaque;
    int s = 0, have_plan = 0, nmat = 0, compute = -1;
    size_t csize = 0, cbsize = 0, wsn = 0;
    int hv = 1;
    cudaStream_t strm = b->stream;
    const float one = 1, zero = 0;
    double ms;
    int fail;
    sg_gpu_result c = {};
    if ((s = L.StructuredDescriptorInit(b->lth, mA, mp, kp, kp, 16, t, CUSPARSE_ORDER_ROW, 0)) != 0) goto lib;
    nmat = 1;
    if ((s = L.DenseDescriptorInit(b->lth, mB, kp, np, kp, 16, t, CUSPARSE_ORDER_COL)) != 0) goto lib;
    nmat = 2;
    if ((s = L.DenseDescriptorInit(b->lth, mC, mp, np, mp, 16, t, CUSPARSE_ORDER_COL)) != 0) goto lib;
    nmat = 3;
    // cusparseComputeType: CUSPARSE_COMPUTE_32F is 2 since cuSPARSELt 0.6; older releases
    // number 16F as 0. The first the library accepts for these types is used.
    for (int ct : {2, 1, 0}) {
        if (L.MatmulDescriptorInit(b->lth, mm, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE, mA,
                                   mB, mC, mC, ct) == 0) {
            compute = ct;
            break;
        }
    }
    if (compute < 0) {
        note_add(r, "cuSPARSELt: no compute type accepted for %s", sg_gpu_dtype_name(b->cfg.dtype));
        goto out;
    }
    if ((s = L.MatmulAlgSelectionInit(b->lth, alg, mm, 0)) != 0) goto lib;
    if ((s = L.MatmulPlanInit(b->lth, plan, mm, alg)) != 0) goto lib;
    have_plan = 1;
    // The flag is only ever raised by the check: clear it first (a fresh cudaMalloc may
    // hand back memory that still holds an earlier buffer's bytes).
    CK(cudaMemsetAsync(valid, 0, sizeof(int), b->stream));
    if ((s = L.SpMMAPruneCheck(b->lth, mm, da, valid, b->stream)) != 0) goto lib;
    CK(cudaMemcpyAsync(&hv, valid, sizeof hv, cudaMemcpyDeviceToHost, b->stream));
    CK(cudaStreamSynchronize(b->stream));
    if (hv != 0) {
        st = lt_explain(b, bufs, mm, da, mp, kp, r);
        goto out;
    }
    if ((s = L.SpMMACompressedSize(b->lth, plan, &csize, &cbsize)) != 0) goto lib;
    CK(bufs.get(&comp, csize));
    CK(bufs.get(&cbuf, cbsize));
    if ((s = L.SpMMACompress(b->lth, plan, da, comp, cbuf, b->stream)) != 0) goto lib;
    if ((s = L.MatmulGetWorkspace(b->lth, plan, &wsn)) != 0) goto lib;
    CK(bufs.get(&ws, wsn));
    // the library's own search for its fastest configuration (not timed)
    if ((s = L.MatmulSearch(b->lth, plan, &one, comp, bm, &zero, y, y, ws, &strm, 1)) != 0) goto lib;
    if ((s = L.MatmulGetWorkspace(b->lth, plan, &wsn)) != 0) goto lib;
    CK(bufs.get(&ws, wsn));
    {
        auto fn = [&]() { return L.Matmul(b->lth, plan, &one, comp, bm, &zero, y, y, ws, &strm, 1); };
        if ((st = time_call(b, fn, &ms, &fail)) != SG_OK) goto out;
        if (fail) {
            s = fail;
            goto lib;
        }
        if ((st = check(b, y, mp, 0, nullptr, g.k, &c)) != SG_OK) goto out;
        keep_best(b, r, "cuSPARSELt", ms, c.max_rel_err);
    }
    goto out;
lib:
    note_add(r, "cuSPARSELt: status %d", s);
out:
    if (have_plan) L.MatmulPlanDestroy(plan);
    if (nmat > 2) L.MatDescriptorDestroy(mC);
    if (nmat > 1) L.MatDescriptorDestroy(mB);
    if (nmat > 0) L.MatDescriptorDestroy(mA);
    delete mA, delete mB, delete mC, delete mm, delete alg, delete plan;
    return st;
}

static void lt_load(sg_gpu_bench *b) {
    const char *env = getenv("SG_CUSPARSELT");
    const char *names[] = {env, "libcusparseLt.so.0", "libcusparseLt.so"};
    void *dl = nullptr;
    for (const char *n : names)
        if (n && *n && (dl = dlopen(n, RTLD_NOW | RTLD_LOCAL))) break;
    if (!dl) {
        snprintf(b->lt_state, sizeof b->lt_state, "not loaded (%s); set SG_CUSPARSELT to libcusparseLt.so.0",
                 dlerror());
        return;
    }
    lt::Api &L = b->lt;
    L.dl = dl;
    int ok = 1;
#define LT(f) ok &= (*(void **)&L.f = dlsym(dl, "cusparseLt" #f)) != nullptr
    LT(Init);
    LT(Destroy);
    LT(GetVersion);
    LT(DenseDescriptorInit);
    LT(StructuredDescriptorInit);
    LT(MatDescriptorDestroy);
    LT(MatmulDescriptorInit);
    LT(MatmulAlgSelectionInit);
    LT(MatmulPlanInit);
    LT(MatmulPlanDestroy);
    LT(MatmulGetWorkspace);
    LT(SpMMAPruneCheck);
    LT(SpMMACompressedSize);
    LT(SpMMACompress);
    LT(Matmul);
    LT(MatmulSearch);
    *(void **)&L.SpMMAPrune = dlsym(dl, "cusparseLtSpMMAPrune"); // optional
#undef LT
    if (!ok) {
        snprintf(b->lt_state, sizeof b->lt_state, "the library lacks an entry point we call");
        return;
    }
    b->lth = new lt::Opaque;
    int s = L.Init(b->lth);
    if (s) {
        snprintf(b->lt_state, sizeof b->lt_state, "cusparseLtInit: status %d", s);
        delete b->lth;
        b->lth = nullptr;
        return;
    }
    int v = 0;
    L.GetVersion(b->lth, &v);
    snprintf(b->lt_state, sizeof b->lt_state, "cuSPARSELt %d", v);
}

// ---- the public entry points ----
extern "C" enum sg_status sg_gpu_available(char *name, size_t cap) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return sgi_error(SG_ERR_UNSUPPORTED, "no GPU answers: %s", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    if (name && cap) snprintf(name, cap, "%s", p.name);
    return SG_OK;
}

extern "C" void sg_gpu_bench_close(struct sg_gpu_bench *b) {
    if (!b) return;
    cudaFree(b->x);
    cudaFree(b->ref);
    if (b->lth) b->lt.Destroy(b->lth), delete b->lth;
    if (b->lt.dl) dlclose(b->lt.dl);
    if (b->dnn) cudnnDestroy(b->dnn);
    if (b->sparse) cusparseDestroy(b->sparse);
    if (b->blas) cublasDestroy(b->blas);
    if (b->ev0) cudaEventDestroy(b->ev0);
    if (b->ev1) cudaEventDestroy(b->ev1);
    if (b->stream) cudaStreamDestroy(b->stream);
    delete b;
}

static sg_status measure_peak(sg_gpu_bench *b) {
    const int64_t n = 8192;
    Bufs bufs;
    void *a, *c;
    CK(bufs.get(&a, (size_t)n * n * b->es));
    CK(bufs.get(&c, (size_t)n * n * b->es));
    CK(cudaMemsetAsync(a, 0, (size_t)n * n * b->es, b->stream));
    if (b->es == 2)
        fill_random<uint16_t><<<4096, 256, 0, b->stream>>>((uint16_t *)a, (size_t)n * n, 1, b->cfg.dtype == SG_GPU_BF16);
    else
        fill_random<float><<<4096, 256, 0, b->stream>>>((float *)a, (size_t)n * n, 1, 0);
    CK(cudaGetLastError());
    const float one = 1, zero = 0;
    const cudaDataType t = ctype(b->cfg.dtype);
    auto fn = [&]() {
        return (int)cublasGemmEx(b->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)n, (int)n, &one, a, t, (int)n, a, t,
                                 (int)n, &zero, c, t, (int)n, blascompute(b->cfg.dtype), CUBLAS_GEMM_DEFAULT);
    };
    double ms;
    int fail;
    sg_status st = time_call(b, fn, &ms, &fail);
    if (st != SG_OK) return st;
    if (fail) return sgi_error(SG_ERR_IO, "gpu: cuBLAS refused the %lld^3 peak GEMM (status %d)", (long long)n, fail);
    b->peak = 2.0 * n * n * n / (ms * 1e-3) / 1e12;
    return SG_OK;
}

extern "C" enum sg_status sg_gpu_bench_open(const struct sg_gpu_bench_cfg *cfg, struct sg_gpu_bench **out) {
    *out = nullptr;
    char name[256];
    sg_status st = sg_gpu_available(name, sizeof name);
    if (st != SG_OK) return st;
    if (cfg->warmup < 0 || cfg->repeat < 1 || (unsigned)cfg->dtype >= SG_GPU_DTYPE_COUNT)
        return sgi_error(SG_ERR_ARG, "gpu: warm-up %d, repeat %d", cfg->warmup, cfg->repeat);
    sg_gpu_bench *b = new sg_gpu_bench();
    b->cfg = *cfg;
    b->es = cfg->dtype == SG_GPU_FP16 || cfg->dtype == SG_GPU_BF16 ? 2 : 4;
    snprintf(b->device, sizeof b->device, "%s", name);
    int s;
#define FAIL(...)                                     \
    do {                                              \
        st = sgi_error(SG_ERR_IO, __VA_ARGS__);       \
        sg_gpu_bench_close(b);                        \
        return st;                                    \
    } while (0)
    cudaError_t e;
    if ((e = cudaStreamCreate(&b->stream)) || (e = cudaEventCreate(&b->ev0)) || (e = cudaEventCreate(&b->ev1)))
        FAIL("gpu: %s", cudaGetErrorString(e));
    if ((s = cublasCreate(&b->blas)) || (s = cublasSetStream(b->blas, b->stream)))
        FAIL("gpu: cuBLAS: status %d", s);
    if ((s = cusparseCreate(&b->sparse)) || (s = cusparseSetStream(b->sparse, b->stream)))
        FAIL("gpu: cuSPARSE: %s", cusparseGetErrorString((cusparseStatus_t)s));
    if ((s = cudnnCreate(&b->dnn)) || (s = cudnnSetStream(b->dnn, b->stream)))
        FAIL("gpu: cuDNN: %s", cudnnGetErrorString((cudnnStatus_t)s));
#undef FAIL
    lt_load(b);
    int vb = 0, vs = 0, rt = 0;
    cublasGetVersion(b->blas, &vb);
    cusparseGetVersion(b->sparse, &vs);
    cudaRuntimeGetVersion(&rt);
    snprintf(b->libs, sizeof b->libs, "CUDA runtime %d, cuBLAS %d, cuSPARSE %d, cuDNN %zu, %s", rt, vb, vs,
             cudnnGetVersion(), b->lt_state);
    if ((st = measure_peak(b)) != SG_OK) {
        sg_gpu_bench_close(b);
        return st;
    }
    *out = b;
    return SG_OK;
}

extern "C" const char *sg_gpu_bench_device(const struct sg_gpu_bench *b) { return b->device; }
extern "C" const char *sg_gpu_bench_libs(const struct sg_gpu_bench *b) { return b->libs; }
extern "C" double sg_gpu_bench_peak(const struct sg_gpu_bench *b) { return b->peak; }

extern "C" enum sg_status sg_gpu_bench_layer(struct sg_gpu_bench *b, const struct sg_gpu_shape *g) {
    if (g->n < 1 || g->c < 1 || g->k < 1 || g->r < 1 || g->s < 1 || g->p < 1 || g->q < 1 || g->stride < 1)
        return sgi_error(SG_ERR_ARG, "gpu: bad layer shape");
    if (b->x) {
        CK(cudaFree(b->x));
        b->x = nullptr;
    }
    if (b->ref) {
        CK(cudaFree(b->ref));
        b->ref = nullptr;
    }
    b->g = *g;
    const size_t n = (size_t)g->n * g->h * g->w * g->c;
    CK(cudaMalloc(&b->x, n * b->es));
    if (b->es == 2)
        fill_random<uint16_t><<<4096, 256, 0, b->stream>>>((uint16_t *)b->x, n, b->cfg.seed, b->cfg.dtype == SG_GPU_BF16);
    else
        fill_random<float><<<4096, 256, 0, b->stream>>>((float *)b->x, n, b->cfg.seed, 0);
    CK(cudaGetLastError());
    CK(cudaMalloc((void **)&b->ref, (size_t)g->k * g->n * g->p * g->q * sizeof(float)));
    CK(cudaStreamSynchronize(b->stream));
    return SG_OK;
}

// The reference: Y = ref (K x R*S*C) x im2col(x), fp32 accumulation and output.
static sg_status make_ref(sg_gpu_bench *b, const float *ref) {
    const sg_gpu_shape &g = b->g;
    const int64_t kd = g.r * g.s * g.c, npq = g.n * g.p * g.q;
    Bufs bufs;
    void *a, *bm;
    int *chmap;
    sg_status st = upload(b, bufs, ref, (size_t)g.k * kd, &a);
    if (st == SG_OK) st = chmap_full(b, bufs, g.c, &chmap);
    if (st == SG_OK) st = im2col_dev(b, bufs, g.c, chmap, kd, npq, 0, &bm);
    if (st != SG_OK) return st;
    const float one = 1, zero = 0;
    const cudaDataType t = ctype(b->cfg.dtype);
    int s = cublasGemmEx(b->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)g.k, (int)npq, (int)kd, &one, a, t, (int)kd, bm, t,
                         (int)kd, &zero, b->ref, CUDA_R_32F, (int)g.k, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s) return sgi_error(SG_ERR_IO, "gpu: cuBLAS refused the reference GEMM (status %d)", s);
    CK(cudaStreamSynchronize(b->stream));
    return SG_OK;
}

extern "C" enum sg_status sg_gpu_bench_run(struct sg_gpu_bench *b, const struct sg_gpu_op *op, struct sg_gpu_result *r) {
    memset(r, 0, sizeof *r);
    r->ms = INFINITY;
    if (!b->x) return sgi_error(SG_ERR_ARG, "gpu: no layer (sg_gpu_bench_layer first)");
    sg_status st = make_ref(b, op->ref);
    if (st != SG_OK) return st;
    const sg_gpu_shape &g = b->g;
    const int64_t npq = g.n * g.p * g.q;
    Bufs bufs;
    switch (op->kind) {
    case SG_GPUK_DENSE: {
        const int64_t kd = g.r * g.s * op->cpad;
        void *a, *bm;
        int *chmap;
        if ((st = upload(b, bufs, op->a, (size_t)g.k * kd, &a)) != SG_OK) return st;
        if ((st = chmap_full(b, bufs, op->cpad, &chmap)) != SG_OK) return st;
        if ((st = im2col_dev(b, bufs, op->cpad, chmap, kd, npq, 0, &bm)) != SG_OK) return st;
        if ((st = run_blas(b, a, g.k, kd, bm, nullptr, r)) != SG_OK) return st;
        if (op->cpad == g.c && (st = run_dnn(b, b->x, g.c, a, g.k, nullptr, r)) != SG_OK) return st;
        break;
    }
    case SG_GPUK_THIN: {
        const sg_gpu_thin *t = op->thin;
        if (t->keep_rows == 0 || t->keep_ch == 0) {
            note_add(r, "nothing kept");
            break;
        }
        const int64_t kd = g.r * g.s * t->keep_ch;
        std::vector<int32_t> m(t->keep_ch);
        for (int64_t j = 0; j < t->keep_ch; j++) m[j] = t->ch_idx[j] < g.c ? t->ch_idx[j] : -1;
        void *a, *bm, *xg;
        int *chmap, *rowmap;
        if ((st = upload(b, bufs, t->val, (size_t)t->keep_rows * kd, &a)) != SG_OK) return st;
        if ((st = upload_int(bufs, m.data(), m.size(), &chmap)) != SG_OK) return st;
        if ((st = upload_int(bufs, t->row_idx, (size_t)t->keep_rows, &rowmap)) != SG_OK) return st;
        if ((st = im2col_dev(b, bufs, t->keep_ch, chmap, kd, npq, 0, &bm)) != SG_OK) return st;
        if ((st = run_blas(b, a, t->keep_rows, kd, bm, rowmap, r)) != SG_OK) return st;
        // cuDNN on the input's kept channels (the gather is not timed: in a pruned network
        // the previous layer produces only those channels)
        const int64_t px = g.n * g.h * g.w;
        CK(bufs.get(&xg, (size_t)px * t->keep_ch * b->es));
        if (b->es == 2)
            gather<uint16_t><<<grid_for(px * t->keep_ch), 256, 0, b->stream>>>((const uint16_t *)b->x, (uint16_t *)xg,
                                                                               px, g.c, chmap, t->keep_ch);
        else
            gather<float><<<grid_for(px * t->keep_ch), 256, 0, b->stream>>>((const float *)b->x, (float *)xg, px, g.c,
                                                                            chmap, t->keep_ch);
        CK(cudaGetLastError());
        if ((st = run_dnn(b, xg, t->keep_ch, a, t->keep_rows, rowmap, r)) != SG_OK) return st;
        break;
    }
    case SG_GPUK_24:
        if ((st = run_lt(b, op->a, op->cpad, r)) != SG_OK) return st;
        break;
    case SG_GPUK_CSR: {
        const sg_gpu_csr *c = op->csr;
        if (c->nnz == 0) {
            note_add(r, "nothing kept");
            break;
        }
        void *val;
        int *rp, *ci;
        if ((st = upload(b, bufs, c->val, (size_t)c->nnz, &val)) != SG_OK) return st;
        if ((st = upload_int(bufs, c->row_ptr, (size_t)c->rows + 1, &rp)) != SG_OK) return st;
        if ((st = upload_int(bufs, c->col, (size_t)c->nnz, &ci)) != SG_OK) return st;
        cusparseSpMatDescr_t A;
        int s = cusparseCreateCsr(&A, c->rows, c->cols, c->nnz, rp, ci, val, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I,
                                  CUSPARSE_INDEX_BASE_ZERO, ctype(b->cfg.dtype));
        if (s) {
            note_add(r, "cuSPARSE csr: %s", cusparseGetErrorString((cusparseStatus_t)s));
            break;
        }
        const cusparseSpMMAlg_t algs[] = {CUSPARSE_SPMM_CSR_ALG1, CUSPARSE_SPMM_CSR_ALG2, CUSPARSE_SPMM_CSR_ALG3};
        st = run_spmm(b, A, "csr", c->rows, c->cols, op->cpad, algs, 3, r);
        cusparseDestroySpMat(A);
        if (st != SG_OK) return st;
        break;
    }
    case SG_GPUK_BSR: {
        const sg_gpu_bsr *x = op->bsr;
        if (x->nnzb == 0) {
            note_add(r, "nothing kept");
            break;
        }
        void *val;
        int *rp, *ci;
        if ((st = upload(b, bufs, x->val, (size_t)x->nnzb * x->bs * x->bs, &val)) != SG_OK) return st;
        if ((st = upload_int(bufs, x->row_ptr, (size_t)x->mb + 1, &rp)) != SG_OK) return st;
        if ((st = upload_int(bufs, x->col, (size_t)x->nnzb, &ci)) != SG_OK) return st;
        if (x->kb * x->bs != g.r * g.s * op->cpad) {
            note_add(r, "bsr: columns %lld are not R*S*cpad", (long long)(x->kb * x->bs));
            break;
        }
        cusparseSpMatDescr_t A;
        int s = cusparseCreateBsr(&A, x->mb, x->kb, x->nnzb, x->bs, x->bs, rp, ci, val, CUSPARSE_INDEX_32I,
                                  CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, ctype(b->cfg.dtype), CUSPARSE_ORDER_ROW);
        if (s) {
            note_add(r, "cuSPARSE bsr: %s", cusparseGetErrorString((cusparseStatus_t)s));
            break;
        }
        const cusparseSpMMAlg_t algs[] = {CUSPARSE_SPMM_BSR_ALG1};
        st = run_spmm(b, A, "bsr", x->mb * x->bs, x->kb * x->bs, op->cpad, algs, 1, r);
        cusparseDestroySpMat(A);
        if (st != SG_OK) return st;
        break;
    }
    case SG_GPUK_BELL: {
        const sg_gpu_bell *x = op->bell;
        if (x->cols_p != g.r * g.s * op->cpad) {
            note_add(r, "blocked-ell: columns %lld are not R*S*cpad", (long long)x->cols_p);
            break;
        }
        void *val;
        int *ci;
        if ((st = upload(b, bufs, x->val, (size_t)x->rows_p * x->ell_cols, &val)) != SG_OK) return st;
        if ((st = upload_int(bufs, x->col_ind, (size_t)(x->rows_p / x->bs) * (x->ell_cols / x->bs), &ci)) != SG_OK)
            return st;
        cusparseSpMatDescr_t A;
        int s = cusparseCreateBlockedEll(&A, x->rows_p, x->cols_p, x->bs, x->ell_cols, ci, val, CUSPARSE_INDEX_32I,
                                         CUSPARSE_INDEX_BASE_ZERO, ctype(b->cfg.dtype));
        if (s) {
            note_add(r, "cuSPARSE blocked-ell: %s", cusparseGetErrorString((cusparseStatus_t)s));
            break;
        }
        const cusparseSpMMAlg_t algs[] = {CUSPARSE_SPMM_BLOCKED_ELL_ALG1};
        st = run_spmm(b, A, "blocked-ell", x->rows_p, x->cols_p, op->cpad, algs, 1, r);
        cusparseDestroySpMat(A);
        if (st != SG_OK) return st;
        break;
    }
    default:
        return sgi_error(SG_ERR_ARG, "gpu: unknown operand kind %d", (int)op->kind);
    }
    return SG_OK;
}
