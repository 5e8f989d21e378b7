/* The body of the compiled EM pass (see _em_kernel.c for what it computes), included by one
 * file per instruction set, which defines LANES (doubles per vector), E_ROWS and M_COLUMNS (the
 * register blocks: 4 x E_ROWS accumulators in the log-densities, 4 x M_COLUMNS in the
 * statistics) and ENTRY (the name of the pass), and selects the target.
 *
 * Per tile of TILE rows, held transposed (rows along the SIMD lanes): the log-densities as
 * register-blocked outer products, visiting only the rows of W with a nonzero per block of
 * four columns; max / exp / normalisation and the tile's log-likelihood; the features
 * [x_a x_b, x, 1]; and resp' z, blocked likewise, into per-call accumulators. X is read once.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "_em_model.h"

#define NV 16 /* SIMD vectors per tile */
#define TILE (LANES * NV)

typedef double vd __attribute__((vector_size(LANES * 8)));
typedef long long vl __attribute__((vector_size(LANES * 8)));

/* A broadcast; GCC compiles the initialiser {a, a, ...} to one masked move per lane. */
static inline __attribute__((always_inline)) vd splat(double a) { return a + (vd){0}; }

static inline __attribute__((always_inline)) vd blend(vl mask, vd a, vd b) { return (vd)(((vl)a & mask) | ((vl)b & ~mask)); }

static inline __attribute__((always_inline)) vd vmax(vd a, vd b) { return blend(a > b, a, b); }

/* exp(x) for x <= 0, to about 1 ulp; 0 below -708 (where it would be subnormal). */
static inline __attribute__((always_inline)) vd vexp(vd x) {
    const vd floor_ = splat(-708.0);
    vl under = x < floor_;
    x = blend(under, floor_, x);
    const vd shifter = splat(0x1.8p52);
    vd n = (x * splat(1.4426950408889634) + shifter) - shifter; /* round to nearest */
    vd r = x - n * splat(6.93147180369123816490e-01);
    r = r - n * splat(1.90821492927058770002e-10);
    vd p = splat(1.0 / 479001600.0);
    static const double taylor[] = {1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
                                    1.0 / 5040.0,     1.0 / 720.0,     1.0 / 120.0,    1.0 / 24.0,
                                    1.0 / 6.0,        0.5,             1.0,            1.0};
    for (int i = 0; i < 12; i++) p = p * r + splat(taylor[i]);
    vl bits = (__builtin_convertvector(n, vl) + 1023) << 52;
    return (vd)((vl)(p * (vd)bits) & ~under);
}

/* lp[k][v] = c_k - |x W_k + b_k|^2 for the tile's NV vectors of rows, in register blocks of
 * 4 columns of W by E_ROWS vectors of rows. */
static inline __attribute__((always_inline)) void log_densities(const Model *m, const vd *xt, vd *lp) {
    for (ptrdiff_t k = 0; k < m->k; k++) {
        const double *w = m->weight + k * m->dp * m->dp, *b = m->bias + k * m->dp;
        for (int v = 0; v < NV; v += E_ROWS) {
            vd squares[E_ROWS];
            for (int u = 0; u < E_ROWS; u++) squares[u] = splat(0);
            for (ptrdiff_t jb = 0; jb < m->dp; jb += 4) {
                vd acc[4][E_ROWS];
                for (int c = 0; c < 4; c++)
                    for (int u = 0; u < E_ROWS; u++) acc[c][u] = splat(b[jb + c]);
                for (ptrdiff_t i = m->row_from[jb / 4]; i < m->row_to[jb / 4]; i++) {
                    const vd *x = xt + i * NV + v;
                    const double *wi = w + i * m->dp + jb;
                    for (int c = 0; c < 4; c++) {
                        double wc = wi[c];
                        for (int u = 0; u < E_ROWS; u++) acc[c][u] += wc * x[u];
                    }
                }
                for (int c = 0; c < 4; c++)
                    for (int u = 0; u < E_ROWS; u++) squares[u] += acc[c][u] * acc[c][u];
            }
            for (int u = 0; u < E_ROWS; u++) lp[k * NV + v + u] = m->constant[k] - squares[u];
        }
    }
}

/* Turns lp into responsibilities in place (rows beyond `valid` get 0); returns the tile's
 * sum of log p(x). */
static inline __attribute__((always_inline)) double normalise(const Model *m, vd *lp, ptrdiff_t valid) {
    vd peaks = splat(0), product = splat(1.0);
    vl lane;
    for (int l = 0; l < LANES; l++) lane[l] = l;
    for (int v = 0; v < NV; v++) {
        vl inside = (lane + v * LANES) < valid;
        vd peak = lp[v];
        for (ptrdiff_t k = 1; k < m->k; k++) peak = vmax(peak, lp[k * NV + v]);
        vd total = splat(0);
        for (ptrdiff_t k = 0; k < m->k; k++) {
            vd e = vexp(lp[k * NV + v] - peak);
            lp[k * NV + v] = e;
            total += e;
        }
        vd scale = (vd)((vl)(splat(1.0) / total) & inside);
        for (ptrdiff_t k = 0; k < m->k; k++) lp[k * NV + v] *= scale;
        peaks += (vd)((vl)peak & inside);
        product *= blend(inside, total, splat(1.0)); /* each total is in [1, k] */
    }
    double sum = 0;
    for (int l = 0; l < LANES; l++) sum += peaks[l] + log(product[l]);
    return sum;
}

/* z of the tile: the pairs x_a x_b, x, 1 (the zero padding up to fp is never written). */
static inline __attribute__((always_inline)) void features(const Model *m, const vd *xt, vd *z) {
    ptrdiff_t f = 0;
    for (; f < m->n_pairs; f++) {
        const vd *a = xt + m->pair_a[f] * NV, *b = xt + m->pair_b[f] * NV;
        for (int v = 0; v < NV; v++) z[f * NV + v] = a[v] * b[v];
    }
    memcpy(z + f * NV, xt, m->d * NV * sizeof(vd));
    f += m->d;
    for (int v = 0; v < NV; v++) z[f * NV + v] = splat(1.0);
}

/* sums[k][f] += sum over the tile's rows of r_k z_f (lanes kept apart until the end), in
 * register blocks of 4 components by M_COLUMNS features. */
static inline __attribute__((always_inline)) void accumulate(const Model *m, const vd *r, const vd *z, vd *sums) {
    for (ptrdiff_t fb = 0; fb < m->fp; fb += M_COLUMNS) /* z's block stays in L1 over the kb loop */
        for (ptrdiff_t kb = 0; kb < m->kp; kb += 4) {
            vd acc[4][M_COLUMNS];
            for (int c = 0; c < 4; c++)
                for (int u = 0; u < M_COLUMNS; u++) acc[c][u] = splat(0);
            for (int v = 0; v < NV; v++) {
                vd r0 = r[(kb + 0) * NV + v], r1 = r[(kb + 1) * NV + v];
                vd r2 = r[(kb + 2) * NV + v], r3 = r[(kb + 3) * NV + v];
                for (int u = 0; u < M_COLUMNS; u++) {
                    vd zu = z[(fb + u) * NV + v];
                    acc[0][u] += r0 * zu;
                    acc[1][u] += r1 * zu;
                    acc[2][u] += r2 * zu;
                    acc[3][u] += r3 * zu;
                }
            }
            for (int c = 0; c < 4; c++)
                for (int u = 0; u < M_COLUMNS; u++) sums[(kb + c) * m->fp + fb + u] += acc[c][u];
        }
}

int ENTRY(const Model *m, const void *X, int single, ptrdiff_t n, double *moments, double *total) {
    size_t xt_size = m->dp * NV * sizeof(vd), lp_size = m->kp * NV * sizeof(vd);
    size_t z_size = m->fp * NV * sizeof(vd), sums_size = m->kp * m->fp * sizeof(vd);
    char *memory = aligned_alloc(sizeof(vd), xt_size + lp_size + z_size + sums_size);
    if (memory == NULL) return 0;
    memset(memory, 0, xt_size + lp_size + z_size + sums_size);
    vd *xt = (vd *)memory, *lp = (vd *)(memory + xt_size);
    vd *z = (vd *)(memory + xt_size + lp_size), *sums = (vd *)(memory + xt_size + lp_size + z_size);
    *total = 0;
    for (ptrdiff_t start = 0; start < n; start += TILE) {
        ptrdiff_t valid = n - start < TILE ? n - start : TILE;
        double *xs = (double *)xt;
        for (ptrdiff_t row = 0; row < valid; row++) {
            ptrdiff_t offset = (start + row) * m->d;
            if (single) {
                const float *x = (const float *)X + offset;
                for (ptrdiff_t i = 0; i < m->d; i++) xs[i * TILE + row] = (double)x[i] - m->shift[i];
            } else {
                const double *x = (const double *)X + offset;
                for (ptrdiff_t i = 0; i < m->d; i++) xs[i * TILE + row] = x[i] - m->shift[i];
            }
        }
        for (ptrdiff_t i = 0; i < m->d; i++)
            for (ptrdiff_t row = valid; row < TILE; row++) xs[i * TILE + row] = 0;
        log_densities(m, xt, lp);
        *total += normalise(m, lp, valid);
        features(m, xt, z);
        accumulate(m, lp, z, sums);
    }
    for (ptrdiff_t i = 0; i < m->kp * m->fp; i++) {
        double s = 0;
        for (int l = 0; l < LANES; l++) s += sums[i][l];
        moments[i] += s;
    }
    free(memory);
    return 1;
}

