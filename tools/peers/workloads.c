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
