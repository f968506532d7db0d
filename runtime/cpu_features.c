/* CPU feature detection for cpu libraries: which kernel variant this CPU can run.
 *
 * Compiled for baseline x86-64 into every cpu library. The resolvers of the
 * library's entry points (GNU ifuncs, emitted by the compiler) call
 * scanaot_cpu_features() when the library is loaded and bind each entry point to
 * the best variant whose features are all present, or to
 * scanaot_cpu_unsupported, which returns SCANAOT_STATUS_CPU_UNSUPPORTED instead of
 * executing an instruction this CPU lacks (SIGILL). The Python runtime calls the
 * same function to refuse such a library at load with the missing features'
 * names. Detection uses CPUID itself (and XGETBV for the OS's register state),
 * never /proc/cpuinfo: an emulator or a container may show the host's flags.
 *
 * Bit i of the mask is the i-th name in scanaot_cpu_feature_names (LLVM's names);
 * runtime/cpu.py holds the same table, and a test checks that they agree.
 */
#include <stdint.h>
#include <cpuid.h>

const char scanaot_cpu_feature_names[] =
    "sse3,ssse3,sse4.1,sse4.2,popcnt,cx16,sahf,"            /* 0-6: x86-64-v2 */
    "avx,avx2,bmi,bmi2,f16c,fma,lzcnt,movbe,xsave,"         /* 7-15: x86-64-v3 */
    "avx512f,avx512bw,avx512cd,avx512dq,avx512vl,"          /* 16-20: x86-64-v4 */
    "avx512vbmi,avx512vbmi2,avx512vnni,avx512bitalg,avx512vpopcntdq,avx512ifma,avx512bf16,avx512fp16,"
    "gfni,vaes,vpclmulqdq,avxvnni,adx,sha,aes,pclmul,prfchw,sse4a";

enum { SSE3, SSSE3, SSE41, SSE42, POPCNT, CX16, SAHF, AVX, AVX2, BMI, BMI2, F16C, FMA, LZCNT, MOVBE, XSAVE,
       AVX512F, AVX512BW, AVX512CD, AVX512DQ, AVX512VL, AVX512VBMI, AVX512VBMI2, AVX512VNNI, AVX512BITALG,
       AVX512VPOPCNTDQ, AVX512IFMA, AVX512BF16, AVX512FP16, GFNI, VAES, VPCLMULQDQ, AVXVNNI, ADX, SHA, AES,
       PCLMUL, PRFCHW, SSE4A };

#define BIT(x) ((uint64_t)1 << (x))

enum { EAX, EBX, ECX, EDX };

/* Where CPUID reports each feature: leaf, subleaf, register, bit. */
static const struct { unsigned leaf, subleaf; unsigned char reg, bit, feature; } SOURCES[] = {
    {1, 0, ECX, 0, SSE3},          {1, 0, ECX, 1, PCLMUL},        {1, 0, ECX, 9, SSSE3},
    {1, 0, ECX, 12, FMA},          {1, 0, ECX, 13, CX16},         {1, 0, ECX, 19, SSE41},
    {1, 0, ECX, 20, SSE42},        {1, 0, ECX, 22, MOVBE},        {1, 0, ECX, 23, POPCNT},
    {1, 0, ECX, 25, AES},          {1, 0, ECX, 26, XSAVE},        {1, 0, ECX, 28, AVX},
    {1, 0, ECX, 29, F16C},         {7, 0, EBX, 3, BMI},           {7, 0, EBX, 5, AVX2},
    {7, 0, EBX, 8, BMI2},          {7, 0, EBX, 16, AVX512F},      {7, 0, EBX, 17, AVX512DQ},
    {7, 0, EBX, 19, ADX},          {7, 0, EBX, 21, AVX512IFMA},   {7, 0, EBX, 28, AVX512CD},
    {7, 0, EBX, 29, SHA},          {7, 0, EBX, 30, AVX512BW},     {7, 0, EBX, 31, AVX512VL},
    {7, 0, ECX, 1, AVX512VBMI},    {7, 0, ECX, 6, AVX512VBMI2},   {7, 0, ECX, 8, GFNI},
    {7, 0, ECX, 9, VAES},          {7, 0, ECX, 10, VPCLMULQDQ},   {7, 0, ECX, 11, AVX512VNNI},
    {7, 0, ECX, 12, AVX512BITALG}, {7, 0, ECX, 14, AVX512VPOPCNTDQ}, {7, 0, EDX, 23, AVX512FP16},
    {7, 1, EAX, 4, AVXVNNI},       {7, 1, EAX, 5, AVX512BF16},    {0x80000001u, 0, ECX, 0, SAHF},
    {0x80000001u, 0, ECX, 5, LZCNT}, {0x80000001u, 0, ECX, 6, SSE4A}, {0x80000001u, 0, ECX, 8, PRFCHW},
};

static uint64_t reported(void) {
  uint64_t m = 0;
  for (unsigned i = 0; i < sizeof SOURCES / sizeof SOURCES[0]; i++) {
    unsigned r[4];
    /* __get_cpuid_count checks the leaf exists; subleaf 1 of leaf 7 is read as zeros where absent */
    if (__get_cpuid_count(SOURCES[i].leaf, SOURCES[i].subleaf, &r[EAX], &r[EBX], &r[ECX], &r[EDX]) &&
        (r[SOURCES[i].reg] >> SOURCES[i].bit & 1u))
      m |= BIT(SOURCES[i].feature);
  }
  return m;
}

/* The registers the OS saves on a context switch (XCR0): AVX needs the YMM state,
 * AVX-512 the opmask and ZMM states; without them those instructions fault. */
static uint64_t without_unsaved_state(uint64_t m) {
  unsigned a, b, c, d;
  uint64_t avx = BIT(AVX) | BIT(AVX2) | BIT(FMA) | BIT(F16C) | BIT(VAES) | BIT(VPCLMULQDQ) | BIT(AVXVNNI);
  uint64_t avx512 = BIT(AVX512F) | BIT(AVX512BW) | BIT(AVX512CD) | BIT(AVX512DQ) | BIT(AVX512VL) |
                    BIT(AVX512VBMI) | BIT(AVX512VBMI2) | BIT(AVX512VNNI) | BIT(AVX512BITALG) |
                    BIT(AVX512VPOPCNTDQ) | BIT(AVX512IFMA) | BIT(AVX512BF16) | BIT(AVX512FP16);
  uint64_t xcr0 = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1u)) { /* OSXSAVE: XGETBV is usable */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = ((uint64_t)hi << 32) | lo;
  }
  if ((xcr0 & 0x6) != 0x6) m &= ~(avx | avx512);
  if ((xcr0 & 0xe6) != 0xe6) m &= ~avx512;
  return m;
}

uint64_t scanaot_cpu_features(void) {
  /* computed once (the resolvers of every entry point ask); a race computes the same value */
  static volatile uint64_t known;
  if (!known) known = without_unsaved_state(reported()) | BIT(63);
  return known & ~BIT(63);
}

/* What an entry point is bound to when no variant can run here: any arguments,
 * nothing read or written, the status bit SCANAOT_STATUS_CPU_UNSUPPORTED. */
int32_t scanaot_cpu_unsupported(void) { return 256; }
