/* The argument check shared by the compiled kernels (toolkit/mixture/_em_kernel.c,
 * toolkit/timeseries/_ar_kernel.c): a buffer holds exactly `expected` float32 or float64 values. */
#ifndef TOOLKIT_KERNEL_BUFFERS_H
#define TOOLKIT_KERNEL_BUFFERS_H

#include <Python.h>

static int check_size(const Py_buffer *buffer, Py_ssize_t expected, Py_ssize_t item, const char *name) {
    if (buffer->len != expected * item) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes, expected %zd %s values", name, buffer->len, expected,
                     item == (Py_ssize_t)sizeof(float) ? "float32" : "float64");
        return 0;
    }
    return 1;
}

#endif
