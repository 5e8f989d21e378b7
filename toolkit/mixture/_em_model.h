/* What the compiled EM pass knows of a mixture (see _em_kernel.c), shared by its builds. */
#ifndef TOOLKIT_EM_MODEL_H
#define TOOLKIT_EM_MODEL_H

#include <stddef.h>

typedef struct {
    ptrdiff_t d, k, n_pairs, dp, kp, fp; /* features, components, pairs; padded to multiples of 4 */
    const double *shift, *weight, *bias, *constant;
    const long long *pair_a, *pair_b;
    const ptrdiff_t *row_from, *row_to; /* per block of 4 columns: the rows of W with a nonzero, over all k */
} Model;

/* The pass over rows [0, n) of X (float32 when `single`): adds the moments, sets *total to the
 * sum of log p(x); 0 when memory runs out, else 1. One build per instruction set. */
int em_pass_avx512(const Model *m, const void *X, int single, ptrdiff_t n, double *moments, double *total);
int em_pass_avx2(const Model *m, const void *X, int single, ptrdiff_t n, double *moments, double *total);

/* Whether each build was compiled for its instruction set (1), or came out as baseline code (0). */
extern const int em_pass_avx512_built, em_pass_avx2_built;

#endif
