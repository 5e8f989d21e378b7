/* The EM pass built for AVX-512: 8-lane vectors, 4 x 4 register blocks (16 of 32 zmm registers). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("arch=x86-64-v4")
#endif
#define LANES 8
#define E_ROWS 4
#define M_COLUMNS 4
#define ENTRY em_pass_avx512
#include "_em_pass.h"
