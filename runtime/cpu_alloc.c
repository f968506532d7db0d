/* The allocator of cpu libraries: large temporaries on transparent huge pages.
 *
 * A kernel's temporaries (a gradient's stored forward states: 32 MB for the W5
 * RNN) are allocated and freed inside every call. From malloc, memory that large
 * comes fresh from mmap each time and is faulted in 4 KB at a time: about 10 ms
 * per 32 MB here, a fifth of the whole gradient. Mapped 2 MB-aligned with
 * MADV_HUGEPAGE, it faults in 2 MB at a time (about 0.6 ms).
 *
 * No state is kept between calls: every block is returned to the system when
 * freed, so kernels stay reentrant and hold no memory after a call. The lowering
 * routes the kernel's malloc/aligned_alloc/free here (aot/passes/allocators.py).
 * A 16-byte header records how the block was obtained.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Failed allocations. Every entry point sets a recovery point (its _setjmp) with
 * scanaot_guard_enter before calling the kernel and clears it after; an
 * allocation that cannot be satisfied returns there, and the call ends with the
 * status SCANAOT_STATUS_BAD_ALLOC instead of the kernel writing through NULL. One
 * point per thread: kernels never call each other. */
static _Thread_local jmp_buf recovery;
static _Thread_local int guarded;

void *scanaot_guard_enter(void) {
  guarded = 1;
  return &recovery;
}

void *scanaot_guard_leave(void) {
  guarded = 0;
  return NULL;
}

static void *out_of_memory(void) {
  if (guarded) {
    guarded = 0;
    longjmp(recovery, 1);
  }
  return NULL;
}

#define HUGE_PAGE ((size_t)2 << 20)
#define HEADER 16 /* keeps malloc's 16-byte alignment */
#define FROM_MALLOC 0
#define FROM_MMAP 1
#define ALIGNED 2 /* an aligned block inside another; [1] is the offset */

void *scanaot_alloc(size_t bytes) {
  if (bytes >= HUGE_PAGE && bytes < SIZE_MAX / 2) {
    size_t total = (bytes + HEADER + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    char *raw = mmap(NULL, total + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw != MAP_FAILED) {
      char *base = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
      if (base > raw) munmap(raw, (size_t)(base - raw));
      char *end = raw + total + HUGE_PAGE;
      if (end > base + total) munmap(base + total, (size_t)(end - (base + total)));
      madvise(base, total, MADV_HUGEPAGE); /* advice only: without THP, 4 KB pages */
      ((uint64_t *)base)[0] = FROM_MMAP;
      ((uint64_t *)base)[1] = total;
      return base + HEADER;
    }
  }
  char *base = bytes < SIZE_MAX - HEADER ? malloc(bytes + HEADER) : NULL;
  if (!base) return out_of_memory();
  ((uint64_t *)base)[0] = FROM_MALLOC;
  return base + HEADER;
}

void *scanaot_aligned_alloc(size_t alignment, size_t bytes) {
  if (alignment <= HEADER) return scanaot_alloc(bytes);
  if (bytes > SIZE_MAX - alignment - 2 * HEADER) return out_of_memory();
  char *inner = scanaot_alloc(bytes + alignment + HEADER);
  char *aligned = (char *)(((uintptr_t)inner + HEADER + alignment - 1) & ~(uintptr_t)(alignment - 1));
  ((uint64_t *)(aligned - HEADER))[0] = ALIGNED;
  ((uint64_t *)(aligned - HEADER))[1] = (uint64_t)(aligned - inner);
  return aligned;
}

void scanaot_free(void *ptr) {
  if (!ptr) return;
  char *base = (char *)ptr - HEADER;
  uint64_t kind = ((uint64_t *)base)[0];
  if (kind == ALIGNED)
    scanaot_free((char *)ptr - ((uint64_t *)base)[1]);
  else if (kind == FROM_MMAP)
    munmap(base, (size_t)((uint64_t *)base)[1]);
  else
    free(base);
}
