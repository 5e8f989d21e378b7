/* The data passes of a least-squares AR fit (toolkit/timeseries/_ar_math.py), one series at a time.
 *
 * numpy spends a temporary and two passes over the data on every lag (an axpy for the
 * residuals, a dot product for X'r and for each lag-product sum); here each series is read
 * in chunks of CHUNK time steps that stay in L1 while every lag visits them. The loops are
 * plain C with `omp simd` reductions (-fopenmp-simd: no OpenMP runtime), so the compiler
 * vectorises them for whichever instruction set target_clones picks at run time.
 *
 * Python interface (float64 C-contiguous arrays; Y (m, n): one series per row):
 *   lag_product_sums(Y, out, m, n, h)   out (m, h + 1): out[:, d] = sum_{s=d}^{n-1} y[s] y[s-d]
 *   edge_sums(Y, head, tail, m, n, h)   head, tail (m, h + 1, h + 1), for d, j = 0..h:
 *     head[:, d, j] = sum_{s<j, s>=d} y[s] y[s-d];  tail[:, d, j] = sum_{i<j} y[n-1-i] y[n-1-i-d]
 *   residual_statistics(Y, params, lags, ssr, gradient, m, n, hold_back, has_const, has_trend)
 *     params (m, k) in the order [const?, trend?, one per lag]; r[t] = y[t] - x_t' params for
 *     t = hold_back..n-1; writes ssr (m,) = r'r and gradient (m, k) = X'r.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "../_kernel_buffers.h"

#define CHUNK 512

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

CLONES static void lag_products(const double *Y, Py_ssize_t m, Py_ssize_t n, Py_ssize_t h, double *out) {
    for (Py_ssize_t row = 0; row < m; row++) {
        const double *y = Y + row * n;
        double *sums = out + row * (h + 1);
        for (Py_ssize_t d = 0; d <= h; d++) sums[d] = 0;
        for (Py_ssize_t start = 0; start < n; start += CHUNK) {
            Py_ssize_t stop = start + CHUNK < n ? start + CHUNK : n;
            for (Py_ssize_t d = 0; d <= h; d++) {
                double acc = 0;
                Py_ssize_t from = start > d ? start : d;
#pragma omp simd reduction(+ : acc)
                for (Py_ssize_t s = from; s < stop; s++) acc += y[s] * y[s - d];
                sums[d] += acc;
            }
        }
    }
}

/* The lag products at both ends of each series, cumulated (in numpy's cumsum order). */
static void edges(const double *Y, Py_ssize_t m, Py_ssize_t n, Py_ssize_t h, double *head, double *tail) {
    Py_ssize_t side = h + 1;
    for (Py_ssize_t row = 0; row < m; row++) {
        const double *y = Y + row * n;
        double *front = head + row * side * side, *back = tail + row * side * side;
        for (Py_ssize_t d = 0; d <= h; d++) {
            double a = 0, b = 0;
            front[d * side] = back[d * side] = 0;
            for (Py_ssize_t i = 0; i < h; i++) {
                if (i >= d) a += y[i] * y[i - d];
                if (n - 1 - i - d >= 0) b += y[n - 1 - i] * y[n - 1 - i - d];
                front[d * side + i + 1] = a;
                back[d * side + i + 1] = b;
            }
        }
    }
}

/* Columns: constant (when has_const), trend t + 1 (when has_trend), then the lags. */
CLONES static void residual_pass(const double *Y, Py_ssize_t m, Py_ssize_t n, const double *params, Py_ssize_t k,
                                 const long long *lags, Py_ssize_t n_lags, int has_const, int has_trend,
                                 Py_ssize_t h, double *ssr, double *gradient) {
    double r[CHUNK];
    for (Py_ssize_t row = 0; row < m; row++) {
        const double *y = Y + row * n, *beta = params + row * k;
        double *g = gradient + row * k, squares = 0;
        for (Py_ssize_t j = 0; j < k; j++) g[j] = 0;
        for (Py_ssize_t start = h; start < n; start += CHUNK) {
            Py_ssize_t len = start + CHUNK < n ? CHUNK : n - start;
            const double *yt = y + start;
            double constant = has_const ? beta[0] : 0, slope = has_trend ? beta[has_const] : 0;
            double first = (double)(start + 1);
#pragma omp simd
            for (Py_ssize_t t = 0; t < len; t++) r[t] = yt[t] - constant - slope * (first + (double)t);
            for (Py_ssize_t j = 0; j < n_lags; j++) {
                const double *lagged = yt - lags[j];
                double phi = beta[has_const + has_trend + j];
#pragma omp simd
                for (Py_ssize_t t = 0; t < len; t++) r[t] -= phi * lagged[t];
            }
            double acc = 0, total = 0, weighted = 0;
#pragma omp simd reduction(+ : acc, total, weighted)
            for (Py_ssize_t t = 0; t < len; t++) {
                acc += r[t] * r[t];
                total += r[t];
                weighted += r[t] * (first + (double)t);
            }
            squares += acc;
            if (has_const) g[0] += total;
            if (has_trend) g[has_const] += weighted;
            for (Py_ssize_t j = 0; j < n_lags; j++) {
                const double *lagged = yt - lags[j];
                double dot = 0;
#pragma omp simd reduction(+ : dot)
                for (Py_ssize_t t = 0; t < len; t++) dot += r[t] * lagged[t];
                g[has_const + has_trend + j] += dot;
            }
        }
        ssr[row] = squares;
    }
}

static PyObject *lag_product_sums(PyObject *self, PyObject *args) {
    Py_buffer Y, out;
    Py_ssize_t m, n, h;
    if (!PyArg_ParseTuple(args, "y*w*nnn", &Y, &out, &m, &n, &h)) return NULL;
    PyObject *result = NULL;
    if (m < 0 || n < 0 || h < 0)
        PyErr_Format(PyExc_ValueError, "need m, n, h >= 0, got %zd, %zd, %zd", m, n, h);
    else if (check_size(&Y, m * n, sizeof(double), "Y") && check_size(&out, m * (h + 1), sizeof(double), "out")) {
        Py_BEGIN_ALLOW_THREADS lag_products(Y.buf, m, n, h, out.buf);
        Py_END_ALLOW_THREADS result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&Y);
    PyBuffer_Release(&out);
    return result;
}

static PyObject *edge_sums(PyObject *self, PyObject *args) {
    Py_buffer Y, head, tail;
    Py_ssize_t m, n, h;
    if (!PyArg_ParseTuple(args, "y*w*w*nnn", &Y, &head, &tail, &m, &n, &h)) return NULL;
    PyObject *result = NULL;
    if (m < 0 || h < 0 || n < h)
        PyErr_Format(PyExc_ValueError, "need m >= 0 and 0 <= h <= n, got m=%zd, n=%zd, h=%zd", m, n, h);
    else if (check_size(&Y, m * n, sizeof(double), "Y") && check_size(&head, m * (h + 1) * (h + 1), sizeof(double), "head") &&
             check_size(&tail, m * (h + 1) * (h + 1), sizeof(double), "tail")) {
        Py_BEGIN_ALLOW_THREADS edges(Y.buf, m, n, h, head.buf, tail.buf);
        Py_END_ALLOW_THREADS result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&Y);
    PyBuffer_Release(&head);
    PyBuffer_Release(&tail);
    return result;
}

static PyObject *residual_statistics(PyObject *self, PyObject *args) {
    Py_buffer Y, params, lags, ssr, gradient;
    Py_ssize_t m, n, h;
    int has_const, has_trend;
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*nnnpp", &Y, &params, &lags, &ssr, &gradient, &m, &n, &h, &has_const, &has_trend))
        return NULL;
    Py_ssize_t n_lags = lags.len / (Py_ssize_t)sizeof(long long), k = has_const + has_trend + n_lags;
    PyObject *result = NULL;
    int lags_ok = lags.len % (Py_ssize_t)sizeof(long long) == 0;
    for (Py_ssize_t j = 0; lags_ok && j < n_lags; j++) {
        long long lag = ((const long long *)lags.buf)[j];
        lags_ok = lag >= 1 && lag <= h;
    }
    if (m < 0 || n < h || h < 0)
        PyErr_Format(PyExc_ValueError, "need m >= 0 and 0 <= hold_back <= n, got m=%zd, n=%zd, hold_back=%zd", m, n, h);
    else if (!lags_ok)
        PyErr_Format(PyExc_ValueError, "lags must be int64 values in [1, hold_back=%zd]", h);
    else if (check_size(&Y, m * n, sizeof(double), "Y") && check_size(&params, m * k, sizeof(double), "params") &&
             check_size(&ssr, m, sizeof(double), "ssr") && check_size(&gradient, m * k, sizeof(double), "gradient")) {
        Py_BEGIN_ALLOW_THREADS residual_pass(Y.buf, m, n, params.buf, k, lags.buf, n_lags, has_const, has_trend, h, ssr.buf,
                                             gradient.buf);
        Py_END_ALLOW_THREADS result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&Y);
    PyBuffer_Release(&params);
    PyBuffer_Release(&lags);
    PyBuffer_Release(&ssr);
    PyBuffer_Release(&gradient);
    return result;
}

static PyMethodDef methods[] = {
    {"lag_product_sums", lag_product_sums, METH_VARARGS, "lag_product_sums(Y, out, m, n, h): out[:, d] = sum_s y[s] y[s-d]"},
    {"edge_sums", edge_sums, METH_VARARGS, "edge_sums(Y, head, tail, m, n, h): cumulated lag products at both ends"},
    {"residual_statistics", residual_statistics, METH_VARARGS,
     "residual_statistics(Y, params, lags, ssr, gradient, m, n, hold_back, has_const, has_trend): r'r and X'r"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ar_kernel", "Data passes of the least-squares AR fit.", -1, methods};

PyMODINIT_FUNC PyInit__ar_kernel(void) { return PyModule_Create(&module); }
