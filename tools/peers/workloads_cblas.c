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

static inline float tanh_rational(float x) {
    const float clamp = 7.90531110763549805f;
    x = x > clamp ? clamp : x;
    x = x < -clamp ? -clamp : x;
    float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;
}

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
