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
#define HAS(reg, bit) (((reg) >> (bit)) & 1u)

static uint64_t leaf1(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  uint64_t m = 0;
  m |= HAS(c, 0) ? BIT(SSE3) : 0;      m |= HAS(c, 1) ? BIT(PCLMUL) : 0;
  m |= HAS(c, 9) ? BIT(SSSE3) : 0;     m |= HAS(c, 12) ? BIT(FMA) : 0;
  m |= HAS(c, 13) ? BIT(CX16) : 0;     m |= HAS(c, 19) ? BIT(SSE41) : 0;
  m |= HAS(c, 20) ? BIT(SSE42) : 0;    m |= HAS(c, 22) ? BIT(MOVBE) : 0;
  m |= HAS(c, 23) ? BIT(POPCNT) : 0;   m |= HAS(c, 25) ? BIT(AES) : 0;
  m |= HAS(c, 26) ? BIT(XSAVE) : 0;    m |= HAS(c, 28) ? BIT(AVX) : 0;
  m |= HAS(c, 29) ? BIT(F16C) : 0;
  return m;
}

static uint64_t leaf7(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  uint64_t m = 0;
  unsigned max_sub = a;
  m |= HAS(b, 3) ? BIT(BMI) : 0;          m |= HAS(b, 5) ? BIT(AVX2) : 0;
  m |= HAS(b, 8) ? BIT(BMI2) : 0;         m |= HAS(b, 16) ? BIT(AVX512F) : 0;
  m |= HAS(b, 17) ? BIT(AVX512DQ) : 0;    m |= HAS(b, 19) ? BIT(ADX) : 0;
  m |= HAS(b, 21) ? BIT(AVX512IFMA) : 0;  m |= HAS(b, 28) ? BIT(AVX512CD) : 0;
  m |= HAS(b, 29) ? BIT(SHA) : 0;         m |= HAS(b, 30) ? BIT(AVX512BW) : 0;
  m |= HAS(b, 31) ? BIT(AVX512VL) : 0;    m |= HAS(c, 1) ? BIT(AVX512VBMI) : 0;
  m |= HAS(c, 6) ? BIT(AVX512VBMI2) : 0;  m |= HAS(c, 8) ? BIT(GFNI) : 0;
  m |= HAS(c, 9) ? BIT(VAES) : 0;         m |= HAS(c, 10) ? BIT(VPCLMULQDQ) : 0;
  m |= HAS(c, 11) ? BIT(AVX512VNNI) : 0;  m |= HAS(c, 12) ? BIT(AVX512BITALG) : 0;
  m |= HAS(c, 14) ? BIT(AVX512VPOPCNTDQ) : 0;
  m |= HAS(d, 23) ? BIT(AVX512FP16) : 0;
  if (max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    m |= HAS(a, 4) ? BIT(AVXVNNI) : 0;
    m |= HAS(a, 5) ? BIT(AVX512BF16) : 0;
  }
  return m;
}

static uint64_t extended(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(0x80000001u, &a, &b, &c, &d)) return 0;
  uint64_t m = 0;
  m |= HAS(c, 0) ? BIT(SAHF) : 0;   m |= HAS(c, 5) ? BIT(LZCNT) : 0;
  m |= HAS(c, 6) ? BIT(SSE4A) : 0;  m |= HAS(c, 8) ? BIT(PRFCHW) : 0;
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
  if (__get_cpuid(1, &a, &b, &c, &d) && HAS(c, 27)) { /* OSXSAVE: XGETBV is usable */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = ((uint64_t)hi << 32) | lo;
  }
  if ((xcr0 & 0x6) != 0x6) m &= ~(avx | avx512);
  if ((xcr0 & 0xe6) != 0xe6) m &= ~avx512;
  return m;
}

uint64_t scanaot_cpu_features(void) {
  return without_unsaved_state(leaf1() | leaf7() | extended());
}

/* What an entry point is bound to when no variant can run here: any arguments,
 * nothing read or written, the status bit SCANAOT_STATUS_CPU_UNSUPPORTED. */
int32_t scanaot_cpu_unsupported(void) { return 256; }
