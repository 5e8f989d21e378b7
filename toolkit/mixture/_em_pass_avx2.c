/* The EM pass built for AVX2 + FMA: 4-lane vectors, 4 x 2 register blocks (8 of 16 ymm
 * registers; 4 x 4 blocks of 8 lanes would need 32 and spill). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("arch=x86-64-v3")
#endif
#define LANES 4
#define E_ROWS 2
#define M_COLUMNS 2
#define ENTRY em_pass_avx2
#include "_em_pass.h"
