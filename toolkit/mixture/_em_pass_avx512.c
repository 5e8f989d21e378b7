/* The EM pass built for AVX-512: 8-lane vectors, 4 x 4 register blocks (16 of 32 zmm registers). */
/* The target, for every function of this file: GCC's pragma (which also defines the instruction
 * set's macros, checked below) or clang's attribute; without either (another compiler, another
 * architecture) the file compiles as baseline code and em_pass_avx512_built says so, so that the glue
 * never picks it. */
#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,bmi,bmi2"))), apply_to = function)
#define EM_PASS_BUILT 1
#elif defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("arch=x86-64-v4")
#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__FMA__)
#define EM_PASS_BUILT 1
#endif
#endif
#ifndef EM_PASS_BUILT
#define EM_PASS_BUILT 0
#endif
#define LANES 8
#define E_ROWS 4
#define M_COLUMNS 4
#define ENTRY em_pass_avx512
#include "_em_pass.h"

const int em_pass_avx512_built = EM_PASS_BUILT;

#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute pop
#endif
