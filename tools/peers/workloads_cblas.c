/* W4/W5 with CBLAS sgemm (OpenBLAS, one thread): the second C column ("c-openblas").
 * Built apart from workloads.c (gcc -O3 -march=native ... -lopenblas) so that the plain C
 * peers need no BLAS. Same structure as rnn_*_blocked in workloads.c: the input projection
 * (and, for the gradient, gW, gU and gb) as single GEMMs outside the loop, one sgemm per
 * step, tanh as XLA's float32 rational approximation. */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#undef I /* complex.h, from openblas_config.h */

void openblas_set_num_threads(int);

#include "tanh_rational.h"

void rnn_forward_cblas(const float *restrict x, const float *restrict h0, const float *restrict W,
                       const float *restrict U, const float *restrict b,
                       int64_t T, int64_t B, int64_t I, int64_t H, float *restrict hs) {
    openblas_set_num_threads(1);
    for (int64_t r = 0; r < T * B; r++)
        for (int64_t j = 0; j < H; j++) hs[r * H + j] = b[j];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T * B, H, I, 1.0f, x, I, U, H, 1.0f, hs, H);
    for (int64_t t = 0; t < T; t++) {
        float *ht = hs + t * B * H;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, H, 1.0f, t ? ht - B * H : h0, H, W, H,
                    1.0f, ht, H);
        for (int64_t i = 0; i < B * H; i++) ht[i] = tanh_rational(ht[i]);
    }
}

void rnn_backward_cblas(const float *restrict x, const float *restrict h0, const float *restrict W,
                        const float *restrict U, const float *restrict hs, const float *restrict g,
                        int64_t T, int64_t B, int64_t I, int64_t H, float *restrict gW,
                        float *restrict gU, float *restrict gb, float *restrict gh0) {
    (void)U;
    openblas_set_num_threads(1);
    const int64_t BH = B * H;
    float *dz = malloc(sizeof(float) * (size_t)(T * BH)), *dh = malloc(sizeof(float) * (size_t)BH);
    for (int64_t i = 0; i < BH; i++) dz[(T - 1) * BH + i] = g[(T - 1) * BH + i] * (1.0f - hs[(T - 1) * BH + i] * hs[(T - 1) * BH + i]);
    for (int64_t t = T - 1; t > 0; t--) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, H, 1.0f, dz + t * BH, H, W, H, 0.0f, dh, H);
        const float *gp = g + (t - 1) * BH, *hp = hs + (t - 1) * BH;
        float *dp = dz + (t - 1) * BH;
        for (int64_t i = 0; i < BH; i++) dp[i] = (dh[i] + gp[i]) * (1.0f - hp[i] * hp[i]);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, H, 1.0f, dz, H, W, H, 0.0f, gh0, H);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, H, B, 1.0f, h0, H, dz, H, 0.0f, gW, H);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, H, (T - 1) * B, 1.0f, hs, H, dz + BH, H, 1.0f, gW, H);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, I, H, T * B, 1.0f, x, I, dz, H, 0.0f, gU, H);
    for (int64_t j = 0; j < H; j++) gb[j] = 0.0f;
    for (int64_t r = 0; r < T * B; r++)
        for (int64_t j = 0; j < H; j++) gb[j] += dz[r * H + j];
    free(dz); free(dh);
}
