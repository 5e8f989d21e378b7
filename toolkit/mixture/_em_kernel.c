/* One EM pass of a Gaussian mixture over a range of rows, fused.
 *
 * Per tile of TILE rows (held transposed: rows along the SIMD lanes) the pass computes
 *   log-densities  lp_k = c_k - |x W_k + b_k|^2,
 *   responsibilities r_k = exp(lp_k - max) / sum,         (and log p(x) for the bound)
 *   sufficient statistics  sum_rows r_k z, z = [x_a x_b for the given pairs (a, b), x, 1],
 * while the tile is in L1/L2: X is read once per pass, nothing of size n x K x D is written.
 * Both products are register-blocked 4 x 4 outer products of SIMD vectors (16 accumulators),
 * so that a pass runs near the FMA peak; the product x W_k visits only the rows of W that
 * hold a nonzero in a block of four columns (found once per call), so that the upper-
 * triangular Cholesky factors of full / tied mixtures cost half, and the diagonal ones of diag /
 * spherical mixtures a quarter.
 *
 * The pass is compiled for AVX-512 (x86-64-v4) only: there it runs at twice the FMA rate of
 * the AVX2 code that scikit-learn's OpenBLAS and torch's MKL run on AMD CPUs. Built for AVX2,
 * the same blocking needs 32 of its 16 vector registers and runs 9x slower, below torch's
 * pass; supported() tells the caller whether this CPU can run it.
 *
 * Python interface (x = a row of X minus shift):
 *   pass_statistics(X, shift, weight, bias, constant, pair_a, pair_b, moments, n, d, k, single)
 *     X (n, d) C-contiguous, float32 when `single` else float64 (float32 rows are widened
 *     as the tile is transposed: the pass computes in float64 either way); shift (d,); weight (k, dp, dp) and bias (k, dp), zero
 *     padded; constant (k,); pair_a, pair_b (n_pairs,) int64 in [0, d);
 *     moments (kp, fp) float64, ADDED to: row k = sum_rows r_k z, z zero padded.
 *     Returns the sum over rows of log p(x) = log sum_k exp(lp_k).
 *   layout(d, k, n_pairs) -> (dp, kp, fp): the padded sizes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LANES 8
#define NV 16 /* SIMD vectors per tile: TILE = 128 rows */
#define TILE (LANES * NV)

typedef double vd __attribute__((vector_size(LANES * 8)));
typedef long long vl __attribute__((vector_size(LANES * 8)));

#if defined(__x86_64__) && defined(__GNUC__)
#define AVX512 __attribute__((target("arch=x86-64-v4")))
static int supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}
#else
#define AVX512
static int supported(void) { return 0; }
#endif

static inline __attribute__((always_inline)) Py_ssize_t round4(Py_ssize_t n) { return (n + 3) & ~(Py_ssize_t)3; }

/* A broadcast; GCC compiles the initialiser {a, a, ...} to eight masked moves. */
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

typedef struct {
    Py_ssize_t d, k, n_pairs, dp, kp, fp;
    const double *shift, *weight, *bias, *constant;
    const long long *pair_a, *pair_b;
    Py_ssize_t *row_from, *row_to; /* per block of 4 columns: the rows of W with a nonzero, over all k */
} Model;

/* lp[k][v] = c_k - |x W_k + b_k|^2 for the tile's NV vectors of rows. */
static inline __attribute__((always_inline)) void log_densities(const Model *m, const vd *xt, vd *lp) {
    for (Py_ssize_t k = 0; k < m->k; k++) {
        const double *w = m->weight + k * m->dp * m->dp, *b = m->bias + k * m->dp;
        for (int v = 0; v < NV; v += 4) {
            vd s0 = splat(0), s1 = splat(0), s2 = splat(0), s3 = splat(0);
            for (Py_ssize_t jb = 0; jb < m->dp; jb += 4) {
                vd acc[4][4];
                for (int c = 0; c < 4; c++)
                    for (int u = 0; u < 4; u++) acc[c][u] = splat(b[jb + c]);
                for (Py_ssize_t i = m->row_from[jb / 4]; i < m->row_to[jb / 4]; i++) {
                    const vd *x = xt + i * NV + v;
                    const double *wi = w + i * m->dp + jb;
                    for (int c = 0; c < 4; c++) {
                        double wc = wi[c];
                        acc[c][0] += wc * x[0];
                        acc[c][1] += wc * x[1];
                        acc[c][2] += wc * x[2];
                        acc[c][3] += wc * x[3];
                    }
                }
                for (int c = 0; c < 4; c++) {
                    s0 += acc[c][0] * acc[c][0];
                    s1 += acc[c][1] * acc[c][1];
                    s2 += acc[c][2] * acc[c][2];
                    s3 += acc[c][3] * acc[c][3];
                }
            }
            vd c = splat(m->constant[k]);
            lp[k * NV + v + 0] = c - s0;
            lp[k * NV + v + 1] = c - s1;
            lp[k * NV + v + 2] = c - s2;
            lp[k * NV + v + 3] = c - s3;
        }
    }
}

/* Turns lp into responsibilities in place (rows beyond `valid` get 0); returns the tile's
 * sum of log p(x). */
static inline __attribute__((always_inline)) double normalise(const Model *m, vd *lp, Py_ssize_t valid) {
    vd peaks = splat(0), product = splat(1.0);
    for (int v = 0; v < NV; v++) {
        vl lane = {0, 1, 2, 3, 4, 5, 6, 7};
        vl inside = (lane + v * LANES) < valid;
        vd peak = lp[v];
        for (Py_ssize_t k = 1; k < m->k; k++) peak = vmax(peak, lp[k * NV + v]);
        vd total = splat(0);
        for (Py_ssize_t k = 0; k < m->k; k++) {
            vd e = vexp(lp[k * NV + v] - peak);
            lp[k * NV + v] = e;
            total += e;
        }
        vd scale = (vd)((vl)(splat(1.0) / total) & inside);
        for (Py_ssize_t k = 0; k < m->k; k++) lp[k * NV + v] *= scale;
        peaks += (vd)((vl)peak & inside);
        product *= blend(inside, total, splat(1.0)); /* each total is in [1, k] */
    }
    double sum = 0;
    for (int l = 0; l < LANES; l++) sum += peaks[l] + log(product[l]);
    return sum;
}

/* z of the tile: the pairs x_a x_b, x, 1 (the zero padding up to fp is never written). */
static inline __attribute__((always_inline)) void features(const Model *m, const vd *xt, vd *z) {
    Py_ssize_t f = 0;
    for (; f < m->n_pairs; f++) {
        const vd *a = xt + m->pair_a[f] * NV, *b = xt + m->pair_b[f] * NV;
        for (int v = 0; v < NV; v++) z[f * NV + v] = a[v] * b[v];
    }
    memcpy(z + f * NV, xt, m->d * NV * sizeof(vd));
    f += m->d;
    for (int v = 0; v < NV; v++) z[f * NV + v] = splat(1.0);
}

/* sums[k][f] += sum over the tile's rows of r_k z_f (lanes kept apart until the end). */
static inline __attribute__((always_inline)) void accumulate(const Model *m, const vd *r, const vd *z, vd *sums) {
    for (Py_ssize_t fb = 0; fb < m->fp; fb += 4) /* z's block stays in L1 over the kb loop */
        for (Py_ssize_t kb = 0; kb < m->kp; kb += 4) {
            vd acc[4][4] = {{{0}}};
            for (int v = 0; v < NV; v++) {
                vd r0 = r[(kb + 0) * NV + v], r1 = r[(kb + 1) * NV + v];
                vd r2 = r[(kb + 2) * NV + v], r3 = r[(kb + 3) * NV + v];
                for (int u = 0; u < 4; u++) {
                    vd zu = z[(fb + u) * NV + v];
                    acc[0][u] += r0 * zu;
                    acc[1][u] += r1 * zu;
                    acc[2][u] += r2 * zu;
                    acc[3][u] += r3 * zu;
                }
            }
            for (int c = 0; c < 4; c++)
                for (int u = 0; u < 4; u++) sums[(kb + c) * m->fp + fb + u] += acc[c][u];
        }
}

/* row_from / row_to of each block of four columns of W. */
static void find_nonzero_rows(Model *m) {
    for (Py_ssize_t jb = 0; jb < m->dp; jb += 4) {
        Py_ssize_t from = m->d, to = 0;
        for (Py_ssize_t k = 0; k < m->k; k++)
            for (Py_ssize_t i = 0; i < m->d; i++)
                for (Py_ssize_t c = jb; c < jb + 4; c++)
                    if (m->weight[(k * m->dp + i) * m->dp + c] != 0) {
                        from = i < from ? i : from;
                        to = i + 1 > to ? i + 1 : to;
                    }
        m->row_from[jb / 4] = from < to ? from : 0;
        m->row_to[jb / 4] = to;
    }
}

/* The pass over rows [0, n) of X: *total = sum of log p(x); 0 when memory runs out, else 1. */
AVX512 static int pass(const Model *m, const void *X, int single, Py_ssize_t n, double *moments, double *total) {
    size_t xt_size = m->dp * NV * sizeof(vd), lp_size = m->kp * NV * sizeof(vd);
    size_t z_size = m->fp * NV * sizeof(vd), sums_size = m->kp * m->fp * sizeof(vd);
    char *memory = aligned_alloc(sizeof(vd), xt_size + lp_size + z_size + sums_size);
    if (memory == NULL) return 0;
    memset(memory, 0, xt_size + lp_size + z_size + sums_size);
    vd *xt = (vd *)memory, *lp = (vd *)(memory + xt_size);
    vd *z = (vd *)(memory + xt_size + lp_size), *sums = (vd *)(memory + xt_size + lp_size + z_size);
    *total = 0;
    for (Py_ssize_t start = 0; start < n; start += TILE) {
        Py_ssize_t valid = n - start < TILE ? n - start : TILE;
        double *xs = (double *)xt;
        for (Py_ssize_t row = 0; row < valid; row++) {
            Py_ssize_t offset = (start + row) * m->d;
            if (single) {
                const float *x = (const float *)X + offset;
                for (Py_ssize_t i = 0; i < m->d; i++) xs[i * TILE + row] = (double)x[i] - m->shift[i];
            } else {
                const double *x = (const double *)X + offset;
                for (Py_ssize_t i = 0; i < m->d; i++) xs[i * TILE + row] = x[i] - m->shift[i];
            }
        }
        for (Py_ssize_t i = 0; i < m->d; i++)
            for (Py_ssize_t row = valid; row < TILE; row++) xs[i * TILE + row] = 0;
        log_densities(m, xt, lp);
        *total += normalise(m, lp, valid);
        features(m, xt, z);
        accumulate(m, lp, z, sums);
    }
    for (Py_ssize_t i = 0; i < m->kp * m->fp; i++) {
        double s = 0;
        for (int l = 0; l < LANES; l++) s += sums[i][l];
        moments[i] += s;
    }
    free(memory);
    return 1;
}

static int check_size(const Py_buffer *buffer, Py_ssize_t expected, const char *name) {
    if (buffer->len != expected * (Py_ssize_t)sizeof(double)) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes, expected %zd float64 values", name, buffer->len, expected);
        return 0;
    }
    return 1;
}

static int check_rows(const Py_buffer *X, Py_ssize_t expected, int single) {
    Py_ssize_t item = single ? (Py_ssize_t)sizeof(float) : (Py_ssize_t)sizeof(double);
    if (X->len != expected * item) {
        PyErr_Format(PyExc_ValueError, "X has %zd bytes, expected %zd %s values", X->len, expected, single ? "float32" : "float64");
        return 0;
    }
    return 1;
}

static int check_pairs(const Py_buffer *a, const Py_buffer *b, Py_ssize_t d) {
    Py_ssize_t n_pairs = a->len / (Py_ssize_t)sizeof(long long);
    if (a->len != b->len || a->len % (Py_ssize_t)sizeof(long long)) {
        PyErr_SetString(PyExc_ValueError, "pair_a and pair_b must be int64 arrays of the same length");
        return 0;
    }
    for (Py_ssize_t i = 0; i < n_pairs; i++) {
        long long ia = ((const long long *)a->buf)[i], ib = ((const long long *)b->buf)[i];
        if (ia < 0 || ia >= d || ib < 0 || ib >= d) {
            PyErr_Format(PyExc_ValueError, "pair %zd is (%lld, %lld), outside [0, %zd)", i, ia, ib, d);
            return 0;
        }
    }
    return 1;
}

static PyObject *pass_statistics(PyObject *self, PyObject *args) {
    Py_buffer X, shift, weight, bias, constant, pair_a, pair_b, moments;
    Py_ssize_t n, d, k;
    int single;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*w*nnnp", &X, &shift, &weight, &bias, &constant, &pair_a, &pair_b,
                          &moments, &n, &d, &k, &single))
        return NULL;
    Py_ssize_t n_pairs = pair_a.len / (Py_ssize_t)sizeof(long long);
    Model m = {d, k, n_pairs, round4(d), round4(k), round4(n_pairs + d + 1)};
    m.shift = shift.buf, m.weight = weight.buf, m.bias = bias.buf, m.constant = constant.buf;
    m.pair_a = pair_a.buf, m.pair_b = pair_b.buf;
    PyObject *result = NULL;
    if (!supported())
        PyErr_SetString(PyExc_RuntimeError, "this CPU has no AVX-512: use the torch pass");
    else if (n < 0 || d <= 0 || k <= 0)
        PyErr_Format(PyExc_ValueError, "need n >= 0, d > 0 and k > 0, got n=%zd, d=%zd, k=%zd", n, d, k);
    else if (check_rows(&X, n * d, single) && check_size(&shift, d, "shift") &&
             check_size(&weight, k * m.dp * m.dp, "weight") && check_size(&bias, k * m.dp, "bias") &&
             check_size(&constant, k, "constant") && check_pairs(&pair_a, &pair_b, d) &&
             check_size(&moments, m.kp * m.fp, "moments")) {
        double total = 0;
        int done = 0;
        m.row_from = malloc(2 * (m.dp / 4) * sizeof(Py_ssize_t));
        if (m.row_from != NULL) {
            m.row_to = m.row_from + m.dp / 4;
            Py_BEGIN_ALLOW_THREADS find_nonzero_rows(&m);
            done = pass(&m, X.buf, single, n, moments.buf, &total);
            Py_END_ALLOW_THREADS free(m.row_from);
        }
        result = done ? PyFloat_FromDouble(total) : PyErr_NoMemory();
    }
    PyBuffer_Release(&X);
    PyBuffer_Release(&shift);
    PyBuffer_Release(&weight);
    PyBuffer_Release(&bias);
    PyBuffer_Release(&constant);
    PyBuffer_Release(&pair_a);
    PyBuffer_Release(&pair_b);
    PyBuffer_Release(&moments);
    return result;
}

static PyObject *layout(PyObject *self, PyObject *args) {
    Py_ssize_t d, k, n_pairs;
    if (!PyArg_ParseTuple(args, "nnn", &d, &k, &n_pairs)) return NULL;
    return Py_BuildValue("nnn", round4(d), round4(k), round4(n_pairs + d + 1));
}

static PyObject *is_supported(PyObject *self, PyObject *args) { return PyBool_FromLong(supported()); }

static PyMethodDef methods[] = {
    {"supported", is_supported, METH_NOARGS, "supported() -> whether this CPU runs the pass (AVX-512)"},
    {"pass_statistics", pass_statistics, METH_VARARGS,
     "pass_statistics(X, shift, weight, bias, constant, pair_a, pair_b, moments, n, d, k, single) -> sum of log p(x)"},
    {"layout", layout, METH_VARARGS, "layout(d, k, n_pairs) -> (dp, kp, fp), the padded sizes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_em_kernel", "Fused EM pass for full / tied Gaussian mixtures.", -1, methods};

PyMODINIT_FUNC PyInit__em_kernel(void) { return PyModule_Create(&module); }
