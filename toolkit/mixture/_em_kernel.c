/* One EM pass of a Gaussian mixture over a range of rows, fused: the Python glue and the choice
 * of build (the pass itself is _em_pass.h, built once per instruction set).
 *
 * Per tile of rows (held transposed: rows along the SIMD lanes) the pass computes
 *   log-densities  lp_k = c_k - |x W_k + b_k|^2,
 *   responsibilities r_k = exp(lp_k - max) / sum,         (and log p(x) for the bound)
 *   sufficient statistics  sum_rows r_k z, z = [x_a x_b for the given pairs (a, b), x, 1],
 * while the tile is in L1/L2: X is read once per pass, nothing of size n x K x D is written.
 * Both products are register-blocked outer products of SIMD vectors, so that a pass runs near
 * the FMA peak; the product x W_k visits only the rows of W that hold a nonzero in a block of
 * four columns (found once per call), so that the upper-triangular Cholesky factors of full /
 * tied mixtures cost half, and the diagonal ones of diag / spherical mixtures a quarter.
 *
 * Builds: AVX-512 (_em_pass_avx512.c), where the pass runs at twice the FMA rate of the AVX2
 * code that scikit-learn's OpenBLAS and torch's MKL run on AMD CPUs, and AVX2 + FMA
 * (_em_pass_avx2.c), with blocks sized to its 16 registers. Other CPUs: supported() is false.
 *
 * Python interface (x = a row of X minus shift):
 *   pass_statistics(X, shift, weight, bias, constant, pair_a, pair_b, moments, n, d, k, single,
 *                   instruction_set="auto")
 *     X (n, d) C-contiguous, float32 when `single` else float64 (float32 rows are widened as
 *     the tile is transposed: the pass computes in float64 either way); shift (d,); weight
 *     (k, dp, dp) and bias (k, dp), zero padded; constant (k,); pair_a, pair_b (n_pairs,)
 *     int64 in [0, d); moments (kp, fp) float64, ADDED to: row k = sum_rows r_k z, z zero
 *     padded. Returns the sum over rows of log p(x) = log sum_k exp(lp_k).
 *     instruction_set: "auto" (the widest this CPU runs), "avx512" or "avx2".
 *   layout(d, k, n_pairs) -> (dp, kp, fp): the padded sizes.
 *   supported() -> whether this CPU runs a build; instruction_set() -> "avx512", "avx2" or "none".
 *   builds() -> {"avx512": bool, "avx2": bool}: which builds were compiled for their instruction
 *     set (GCC or clang); one that came out as baseline code is never chosen.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "../_kernel_buffers.h"
#include "_em_model.h"

enum { NONE, AVX2, AVX512 };

/* Whether the build for `isa` was compiled for it and this CPU runs it. */
static int runs(int isa) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (isa == AVX512)
        return em_pass_avx512_built && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    if (isa == AVX2) return em_pass_avx2_built && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 0;
}

/* The widest build this CPU runs. */
static int instruction_set(void) { return runs(AVX512) ? AVX512 : runs(AVX2) ? AVX2 : NONE; }

static inline __attribute__((always_inline)) Py_ssize_t round4(Py_ssize_t n) { return (n + 3) & ~(Py_ssize_t)3; }

/* row_from / row_to of each block of four columns of W. */
static void find_nonzero_rows(const Model *m, ptrdiff_t *row_from, ptrdiff_t *row_to) {
    for (Py_ssize_t jb = 0; jb < m->dp; jb += 4) {
        Py_ssize_t from = m->d, to = 0;
        for (Py_ssize_t k = 0; k < m->k; k++)
            for (Py_ssize_t i = 0; i < m->d; i++)
                for (Py_ssize_t c = jb; c < jb + 4; c++)
                    if (m->weight[(k * m->dp + i) * m->dp + c] != 0) {
                        from = i < from ? i : from;
                        to = i + 1 > to ? i + 1 : to;
                    }
        row_from[jb / 4] = from < to ? from : 0;
        row_to[jb / 4] = to;
    }
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
    const char *requested = "auto";
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*w*nnnp|s", &X, &shift, &weight, &bias, &constant, &pair_a, &pair_b,
                          &moments, &n, &d, &k, &single, &requested))
        return NULL;
    int chosen = instruction_set();
    if (strcmp(requested, "avx512") == 0)
        chosen = AVX512;
    else if (strcmp(requested, "avx2") == 0)
        chosen = AVX2;
    else if (strcmp(requested, "auto") != 0)
        chosen = -1;
    Py_ssize_t n_pairs = pair_a.len / (Py_ssize_t)sizeof(long long);
    Model m = {d, k, n_pairs, round4(d), round4(k), round4(n_pairs + d + 1)};
    m.shift = shift.buf, m.weight = weight.buf, m.bias = bias.buf, m.constant = constant.buf;
    m.pair_a = pair_a.buf, m.pair_b = pair_b.buf;
    PyObject *result = NULL;
    if (chosen < 0)
        PyErr_Format(PyExc_ValueError, "instruction_set must be 'auto', 'avx512' or 'avx2', got '%s'", requested);
    else if (!runs(chosen))
        PyErr_Format(PyExc_RuntimeError, "this CPU does not run the %s build (built: avx512 %d, avx2 %d): use the torch pass",
                     chosen == AVX512 ? "AVX-512" : chosen == AVX2 ? "AVX2" : "requested", em_pass_avx512_built, em_pass_avx2_built);
    else if (n < 0 || d <= 0 || k <= 0)
        PyErr_Format(PyExc_ValueError, "need n >= 0, d > 0 and k > 0, got n=%zd, d=%zd, k=%zd", n, d, k);
    else if (check_size(&X, n * d, single ? sizeof(float) : sizeof(double), "X") &&
             check_size(&shift, d, sizeof(double), "shift") && check_size(&weight, k * m.dp * m.dp, sizeof(double), "weight") &&
             check_size(&bias, k * m.dp, sizeof(double), "bias") && check_size(&constant, k, sizeof(double), "constant") &&
             check_pairs(&pair_a, &pair_b, d) && check_size(&moments, m.kp * m.fp, sizeof(double), "moments")) {
        double total = 0;
        int done = 0;
        ptrdiff_t *rows = malloc(2 * (m.dp / 4) * sizeof(ptrdiff_t));
        if (rows != NULL) {
            m.row_from = rows, m.row_to = rows + m.dp / 4;
            Py_BEGIN_ALLOW_THREADS find_nonzero_rows(&m, rows, rows + m.dp / 4);
            done = (chosen == AVX512 ? em_pass_avx512 : em_pass_avx2)(&m, X.buf, single, n, moments.buf, &total);
            Py_END_ALLOW_THREADS free(rows);
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

static PyObject *is_supported(PyObject *self, PyObject *args) { return PyBool_FromLong(instruction_set() != NONE); }

static PyObject *instruction_set_name(PyObject *self, PyObject *args) {
    static const char *names[] = {"none", "avx2", "avx512"};
    return PyUnicode_FromString(names[instruction_set()]);
}

static PyObject *builds(PyObject *self, PyObject *args) {
    return Py_BuildValue("{s:O,s:O}", "avx512", em_pass_avx512_built ? Py_True : Py_False, "avx2",
                         em_pass_avx2_built ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"builds", builds, METH_NOARGS, "builds() -> {'avx512': bool, 'avx2': bool}: which builds were compiled for their instruction set"},
    {"supported", is_supported, METH_NOARGS, "supported() -> whether this CPU runs a build of the pass"},
    {"instruction_set", instruction_set_name, METH_NOARGS, "instruction_set() -> the build used: 'avx512', 'avx2' or 'none'"},
    {"pass_statistics", pass_statistics, METH_VARARGS,
     "pass_statistics(X, shift, weight, bias, constant, pair_a, pair_b, moments, n, d, k, single, instruction_set='auto') "
     "-> sum of log p(x)"},
    {"layout", layout, METH_VARARGS, "layout(d, k, n_pairs) -> (dp, kp, fp), the padded sizes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_em_kernel", "Fused EM pass for Gaussian mixtures.", -1, methods};

PyMODINIT_FUNC PyInit__em_kernel(void) { return PyModule_Create(&module); }
