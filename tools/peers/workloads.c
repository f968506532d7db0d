/* Hand-written C peers of the benchmark workloads (compiled with gcc -O3 -march=native).
 * Plain loops, as a careful programmer would write them without intrinsics. */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* W1: A**k elementwise, last value only. */
void power(const float *restrict a, int64_t n, int32_t k, float *restrict out) {
    for (int64_t i = 0; i < n; i++) out[i] = 1.0f;
    for (int32_t s = 0; s < k; s++)
        for (int64_t i = 0; i < n; i++) out[i] *= a[i];
}

/* W2: triangular numbers, every step stored. */
void triangular(int32_t n, int32_t *restrict out) {
    int32_t acc = 0;
    for (int32_t i = 0; i < n; i++) { acc += i; out[i] = acc; }
}

/* W3: polynomial sum(c[i] * x**i) for float32 coefficients, float64 result like the guide. */
double polynomial(const float *restrict c, int64_t n, float x) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += (double)c[i] * pow((double)x, (double)i);
    return total;
}

/* W4: h_t = tanh(h_{t-1} W + x_t U + b), all h_t stored: hs[T][B][H]. */
void rnn_forward(const float *restrict x, const float *restrict h0, const float *restrict W,
                 const float *restrict U, const float *restrict b,
                 int64_t T, int64_t B, int64_t I, int64_t H, float *restrict hs) {
    for (int64_t t = 0; t < T; t++) {
        const float *hp = t ? hs + (t - 1) * B * H : h0;
        float *restrict ht = hs + t * B * H;
        const float *xt = x + t * B * I;
        for (int64_t r = 0; r < B; r++) {
            float *restrict row = ht + r * H;
            for (int64_t j = 0; j < H; j++) row[j] = b[j];
            for (int64_t k = 0; k < H; k++) {
                float v = hp[r * H + k];
                const float *w = W + k * H;
                for (int64_t j = 0; j < H; j++) row[j] += v * w[j];
            }
            for (int64_t k = 0; k < I; k++) {
                float v = xt[r * I + k];
                const float *u = U + k * H;
                for (int64_t j = 0; j < H; j++) row[j] += v * u[j];
            }
            for (int64_t j = 0; j < H; j++) row[j] = tanhf(row[j]);
        }
    }
}

/* W5: gradient of sum(hs * g) w.r.t. W, U, b, h0 (BPTT over the stored hs). */
void rnn_backward(const float *restrict x, const float *restrict h0, const float *restrict W,
                  const float *restrict U, const float *restrict hs, const float *restrict g,
                  int64_t T, int64_t B, int64_t I, int64_t H, float *restrict gW, float *restrict gU,
                  float *restrict gb, float *restrict gh0, float *restrict work) {
    float *dh = work;            /* B*H: adjoint of h_t */
    float *dz = work + B * H;    /* B*H: adjoint of the pre-activation */
    memset(gW, 0, sizeof(float) * H * H); memset(gU, 0, sizeof(float) * I * H);
    memset(gb, 0, sizeof(float) * H); memset(dh, 0, sizeof(float) * B * H);
    for (int64_t t = T - 1; t >= 0; t--) {
        const float *ht = hs + t * B * H, *gt = g + t * B * H;
        const float *hp = t ? hs + (t - 1) * B * H : h0;
        const float *xt = x + t * B * I;
        for (int64_t i = 0; i < B * H; i++) dz[i] = (dh[i] + gt[i]) * (1.0f - ht[i] * ht[i]);
        for (int64_t r = 0; r < B; r++)
            for (int64_t k = 0; k < H; k++) {
                float v = hp[r * H + k];
                float *w = gW + k * H;
                for (int64_t j = 0; j < H; j++) w[j] += v * dz[r * H + j];
            }
        for (int64_t r = 0; r < B; r++)
            for (int64_t k = 0; k < I; k++) {
                float v = xt[r * I + k];
                float *u = gU + k * H;
                for (int64_t j = 0; j < H; j++) u[j] += v * dz[r * H + j];
            }
        for (int64_t r = 0; r < B; r++)
            for (int64_t j = 0; j < H; j++) gb[j] += dz[r * H + j];
        for (int64_t r = 0; r < B; r++)
            for (int64_t k = 0; k < H; k++) {
                const float *w = W + k * H;
                float acc = 0.0f;
                for (int64_t j = 0; j < H; j++) acc += dz[r * H + j] * w[j];
                dh[r * H + k] = acc;
            }
    }
    memcpy(gh0, dh, sizeof(float) * B * H);
}

/* W6: powers of two up to max_value (until), returns the count. */
int32_t power_of_2(float max_value, float *restrict out, int32_t n_steps) {
    float p = 1.0f;
    for (int32_t i = 0; i < n_steps; i++) {
        p *= 2.0f;
        out[i] = p;
        if (p > max_value) return i + 1;
    }
    return n_steps;
}

/* W7: one step of v * 2 on a length-4 vector. */
void call(const float *restrict v, float *restrict out) {
    for (int i = 0; i < 4; i++) out[i] = v[i] * 2.0f;
}

/* ---------------------------------------------------------------- W4/W5, blocked
 * What a good C programmer writes for the matrix workloads, still plain C without
 * intrinsics: the input projection x_t U + b for all steps hoisted into one GEMM
 * before the loop (written straight into hs, which each step then reads as its
 * accumulator), each step's h W a cache-blocked, register-tiled GEMM (an MR x NR
 * tile of accumulators kept in vector registers, the k loop innermost running over
 * the rows of a packed panel of W), tanh as XLA's
 * float32 rational approximation (the one scanaot emits: a few ulp, vectorizable;
 * libm's tanhf is a call per element). The gradient stores every step's dz and
 * computes gW, gU and gb after the loop as single GEMMs over all T*B rows; only
 * dh = dz W^T stays in the loop, fused with the next step's dz. */
#include <stdlib.h>
#include <sys/mman.h>

/* Large temporaries on huge pages, as numpy (and scanaot's runtime) allocate theirs:
 * a fresh 32 MB buffer costs thousands of 4 KB page faults per call otherwise. */
static float *alloc_huge(size_t n) {
    void *p = NULL;
    const size_t bytes = n * sizeof(float);
    if (posix_memalign(&p, 1 << 21, bytes)) return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

#define MR 8
#define NR 32
#define MC 256 /* rows of A per block of the hoisted GEMMs (L2) */
#define KC 256 /* depth per block of the transposed (gradient) GEMMs */

enum { INIT_ZERO, INIT_LOAD, INIT_BIAS };
enum { EPI_STORE, EPI_TANH, EPI_DZ };

#include "tanh_rational.h"

/* 16 floats, one AVX-512 register (two AVX2 ones): GCC's portable vector extension,
 * no intrinsics; aligned(4) allows unaligned rows. */
typedef float vf16 __attribute__((vector_size(64), aligned(4)));

/* One mr x nr tile: C = epi(init + sum_k A(i,k) B(k,j)), A(i,k) = A[i*ars + k*aks],
 * B(k,j) = B[k*ldb + j]. Inlined with constant mr and nr (16 or 32) the accumulators
 * are mr * nr/16 vector registers and the k loop is broadcast-and-FMA only. */
static inline __attribute__((always_inline)) void
tile(const int mr, const int nr, int64_t K, const float *restrict A, int64_t ars, int64_t aks,
     const float *restrict Bm, int64_t ldb, float *restrict C, int64_t ldc, int init,
     const float *restrict bias, int epi, const float *restrict G, const float *restrict Hh) {
    if (nr % 16) { /* odd edge widths: plain scalar loops */
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) {
                float v = init == INIT_LOAD ? C[i * ldc + j] : init == INIT_BIAS ? bias[j] : 0.0f;
                for (int64_t k = 0; k < K; k++) v += A[i * ars + k * aks] * Bm[k * ldb + j];
                C[i * ldc + j] = v;
            }
    } else {
        const int nv = nr / 16;
        vf16 acc[MR][NR / 16];
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < nv; v++)
                acc[i][v] = init == INIT_LOAD ? *(const vf16 *)(C + i * ldc + 16 * v)
                          : init == INIT_BIAS ? *(const vf16 *)(bias + 16 * v) : (vf16){0};
        for (int64_t k = 0; k < K; k++) {
            vf16 bk[NR / 16];
            for (int v = 0; v < nv; v++) bk[v] = *(const vf16 *)(Bm + k * ldb + 16 * v);
            for (int i = 0; i < mr; i++) {
                const vf16 a = (vf16){0} + A[i * ars + k * aks];
                for (int v = 0; v < nv; v++) acc[i][v] += a * bk[v];
            }
        }
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < nv; v++) *(vf16 *)(C + i * ldc + 16 * v) = acc[i][v];
    }
    if (epi == EPI_STORE) return;
    for (int i = 0; i < mr; i++) { /* the epilogue on the tile just stored (in L1); gcc vectorizes it */
        float *restrict c = C + i * ldc;
        if (epi == EPI_TANH)
            for (int j = 0; j < nr; j++) c[j] = tanh_rational(c[j]);
        else
            for (int j = 0; j < nr; j++) {
                const float h = Hh[i * ldc + j];
                c[j] = (c[j] + G[i * ldc + j]) * (1.0f - h * h);
            }
    }
}

#define TILE_ARGS K, A, ars, aks, Bm, ldb, C, ldc, init, bias, epi, G, Hh
static void tile_any(int64_t mr, int64_t nr, int64_t K, const float *A, int64_t ars, int64_t aks,
                     const float *Bm, int64_t ldb, float *C, int64_t ldc, int init, const float *bias,
                     int epi, const float *G, const float *Hh) {
    if (mr == MR && nr == NR) tile(MR, NR, TILE_ARGS);
    else if (mr == MR && nr == 16) tile(MR, 16, TILE_ARGS);
    else if (nr == NR)
        for (int64_t i = 0; i < mr; i++)
            tile(1, NR, K, A + i * ars, ars, aks, Bm, ldb, C + i * ldc, ldc, init, bias, epi,
                 G ? G + i * ldc : G, Hh ? Hh + i * ldc : Hh);
    else if (nr == 16)
        for (int64_t i = 0; i < mr; i++)
            tile(1, 16, K, A + i * ars, ars, aks, Bm, ldb, C + i * ldc, ldc, init, bias, epi,
                 G ? G + i * ldc : G, Hh ? Hh + i * ldc : Hh);
    else tile((int)mr, (int)nr, TILE_ARGS); /* edges of odd sizes: correct, not fast */
}

/* C (M x N) = epi(init + A B); B in panels of NR columns: panel p at Bm + p*pstride. */
static void gemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t ars, int64_t aks,
                 const float *Bm, int64_t ldb, int64_t pstride, float *C, int64_t ldc, int init,
                 const float *bias, int epi, const float *G, const float *Hh) {
    for (int64_t j0 = 0; j0 < N; j0 += NR) {
        const int64_t nr = N - j0 < NR ? N - j0 : NR;
        const float *Bp = Bm + (j0 / NR) * pstride;
        for (int64_t i0 = 0; i0 < M; i0 += MR) {
            const int64_t mr = M - i0 < MR ? M - i0 : MR;
            tile_any(mr, nr, K, A + i0 * ars, ars, aks, Bp, ldb, C + i0 * ldc + j0, ldc, init,
                     bias ? bias + j0 : bias, epi, G ? G + i0 * ldc + j0 : G, Hh ? Hh + i0 * ldc + j0 : Hh);
        }
    }
}

/* Packs B(k,j) = S[k*sk + j*sj] (K x N) into panels of NR columns, K x NR each (zero-padded). */
static float *pack(const float *S, int64_t sk, int64_t sj, int64_t K, int64_t N) {
    const int64_t panels = (N + NR - 1) / NR;
    float *P = calloc((size_t)(panels * K * NR), sizeof(float));
    for (int64_t p = 0; p < panels; p++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < NR && p * NR + j < N; j++)
                P[(p * K + k) * NR + j] = S[k * sk + (p * NR + j) * sj];
    return P;
}

/* C (M x N) (+)= A^T B with A (K x M, lda), B (K x N, ldb): the K = T*B reductions. */
static void gemm_tn(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *Bm,
                    int64_t ldb, float *C, int64_t ldc, int accumulate) {
    const int64_t panels = (N + NR - 1) / NR;
    float *P = malloc(sizeof(float) * (size_t)(panels * KC * NR));
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = K - k0 < KC ? K - k0 : KC;
        for (int64_t p = 0; p < panels; p++) /* pack this block of B: panels of kc x NR */
            for (int64_t k = 0; k < kc; k++)
                for (int64_t j = 0; j < NR; j++)
                    P[(p * kc + k) * NR + j] = p * NR + j < N ? Bm[(k0 + k) * ldb + p * NR + j] : 0.0f;
        gemm(M, N, kc, A + k0 * lda, 1, lda, P, NR, kc * NR, C, ldc,
             accumulate || k0 ? INIT_LOAD : INIT_ZERO, NULL, EPI_STORE, NULL, NULL);
    }
    free(P);
}

void rnn_forward_blocked(const float *restrict x, const float *restrict h0, const float *restrict W,
                         const float *restrict U, const float *restrict b,
                         int64_t T, int64_t B, int64_t I, int64_t H, float *restrict hs) {
    float *Wp = pack(W, H, 1, H, H), *Up = pack(U, H, 1, I, H);
    for (int64_t m0 = 0; m0 < T * B; m0 += MC) /* hs[t] = x_t U + b, all steps */
        gemm(T * B - m0 < MC ? T * B - m0 : MC, H, I, x + m0 * I, I, 1, Up, NR, I * NR, hs + m0 * H, H,
             INIT_BIAS, b, EPI_STORE, NULL, NULL);
    for (int64_t t = 0; t < T; t++) /* hs[t] = tanh(hs[t] + h_{t-1} W) */
        gemm(B, H, H, t ? hs + (t - 1) * B * H : h0, H, 1, Wp, NR, H * NR, hs + t * B * H, H,
             INIT_LOAD, NULL, EPI_TANH, NULL, NULL);
    free(Wp); free(Up);
}

void rnn_backward_blocked(const float *restrict x, const float *restrict h0, const float *restrict W,
                          const float *restrict U, const float *restrict hs, const float *restrict g,
                          int64_t T, int64_t B, int64_t I, int64_t H, float *restrict gW,
                          float *restrict gU, float *restrict gb, float *restrict gh0) {
    (void)U;
    const int64_t BH = B * H;
    float *Wt = pack(W, 1, H, H, H); /* B(k,j) = W[j][k]: dh = dz W^T */
    float *dz = alloc_huge((size_t)(T * BH));
    const float *hl = hs + (T - 1) * BH, *gl = g + (T - 1) * BH;
    float *dl = dz + (T - 1) * BH;
    for (int64_t i = 0; i < BH; i++) dl[i] = gl[i] * (1.0f - hl[i] * hl[i]);
    for (int64_t t = T - 1; t > 0; t--) /* dz_{t-1} = (dz_t W^T + g_{t-1}) (1 - h_{t-1}^2) */
        gemm(B, H, H, dz + t * BH, H, 1, Wt, NR, H * NR, dz + (t - 1) * BH, H, INIT_ZERO, NULL, EPI_DZ,
             g + (t - 1) * BH, hs + (t - 1) * BH);
    gemm(B, H, H, dz, H, 1, Wt, NR, H * NR, gh0, H, INIT_ZERO, NULL, EPI_STORE, NULL, NULL);
    gemm_tn(H, H, B, h0, H, dz, H, gW, H, 0);                     /* gW = h0^T dz_0 */
    gemm_tn(H, H, (T - 1) * B, hs, H, dz + BH, H, gW, H, 1);      /*    + sum_t h_{t-1}^T dz_t */
    gemm_tn(I, H, T * B, x, I, dz, H, gU, H, 0);                  /* gU = sum_t x_t^T dz_t */
    for (int64_t j = 0; j < H; j++) gb[j] = 0.0f;
    for (int64_t r = 0; r < T * B; r++)
        for (int64_t j = 0; j < H; j++) gb[j] += dz[r * H + j];
    free(dz); free(Wt);
}
