/* The EM pass built for AVX2 + FMA: 4-lane vectors, 4 x 2 register blocks (8 of 16 ymm
 * registers; 4 x 4 blocks of 8 lanes would need 32 and spill). */
/* The target, for every function of this file: GCC's pragma (which also defines the instruction
 * set's macros, checked below) or clang's attribute; without either (another compiler, another
 * architecture) the file compiles as baseline code and em_pass_avx2_built says so, so that the glue
 * never picks it. */
#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,bmi,bmi2"))), apply_to = function)
#define EM_PASS_BUILT 1
#elif defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("arch=x86-64-v3")
#if defined(__AVX2__) && defined(__FMA__)
#define EM_PASS_BUILT 1
#endif
#endif
#ifndef EM_PASS_BUILT
#define EM_PASS_BUILT 0
#endif
#define LANES 4
#define E_ROWS 2
#define M_COLUMNS 2
#define ENTRY em_pass_avx2
#include "_em_pass.h"

const int em_pass_avx2_built = EM_PASS_BUILT;

#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute pop
#endif
