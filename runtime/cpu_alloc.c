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
 * A 32-byte header records how the block was obtained and links it into the
 * calling thread's list of live blocks (freed all at once if an allocation fails).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Failed allocations. Every entry point sets a recovery point (its _setjmp) with
 * scanaot_guard_enter before calling the kernel and clears it after; an
 * allocation that cannot be satisfied frees the blocks this call still holds and
 * returns there, and the call ends with the status SCANAOT_STATUS_BAD_ALLOC
 * instead of the kernel writing through NULL (and without leaking: a service
 * that keeps hitting its memory limit keeps its memory). One recovery point and
 * one list of live blocks per thread: kernels never call each other. */
static _Thread_local jmp_buf recovery;
static _Thread_local int guarded;

#define HUGE_PAGE ((size_t)2 << 20)
#define FROM_MALLOC 0
#define FROM_MMAP 1
#define ALIGNED 2 /* an aligned block inside another; `extent` is the offset */
/* Every block is 64-byte aligned (a cache line, an AVX-512 vector): the kernels'
 * allocations carry no alignment of their own to compute (their lowering leaves the
 * pointer as it is given). */
#define ALIGNMENT ((size_t)64)

/* Before every block: how it was obtained, where what malloc or mmap returned
 * starts, and its place in the thread's list of live blocks. */
typedef struct block {
  uint64_t kind;
  uint64_t extent; /* FROM_MMAP: the mapping's length; ALIGNED: the offset to the block */
  uint64_t lead;   /* bytes from the start of the malloc'd or mapped memory to this header */
  struct block *prev, *next;
} block;
#define HEADER sizeof(block)

static _Thread_local block *live;

static void track(block *b) {
  b->prev = NULL;
  b->next = live;
  if (live) live->prev = b;
  live = b;
}

static void untrack(block *b) {
  if (b->prev) b->prev->next = b->next;
  else if (live == b) live = b->next;
  if (b->next) b->next->prev = b->prev;
}

static void release(block *b) {
  char *start = (char *)b - b->lead;
  if (b->kind == FROM_MMAP)
    munmap(start, (size_t)b->extent);
  else
    free(start);
}

void *scanaot_guard_enter(void) {
  guarded = 1;
  live = NULL;
  return &recovery;
}

void *scanaot_guard_leave(void) {
  guarded = 0;
  live = NULL; /* a kernel frees what it allocates; after a failure everything was freed */
  return NULL;
}

static void *out_of_memory(void) {
  if (guarded) {
    while (live) {
      block *b = live;
      live = b->next;
      release(b);
    }
    guarded = 0;
    longjmp(recovery, 1);
  }
  return NULL;
}

/* The block of `bytes` at the first 64-byte boundary past a header in the memory
 * at `start`. */
static void *hand_out(char *start, uint64_t kind, uint64_t extent) {
  char *payload = (char *)(((uintptr_t)start + HEADER + ALIGNMENT - 1) & ~(uintptr_t)(ALIGNMENT - 1));
  block *b = (block *)(payload - HEADER);
  b->kind = kind;
  b->extent = extent;
  b->lead = (uint64_t)((char *)b - start);
  if (guarded) track(b);
  else b->prev = b->next = NULL;
  return payload;
}

void *scanaot_alloc(size_t bytes) {
  size_t padded = HEADER + ALIGNMENT; /* the header and the way to a boundary, at most */
  if (bytes >= HUGE_PAGE && bytes < SIZE_MAX / 2) {
    size_t total = (bytes + padded + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    char *raw = mmap(NULL, total + HUGE_PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw != MAP_FAILED) {
      char *base = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
      if (base > raw) munmap(raw, (size_t)(base - raw));
      char *end = raw + total + HUGE_PAGE;
      if (end > base + total) munmap(base + total, (size_t)(end - (base + total)));
      madvise(base, total, MADV_HUGEPAGE); /* advice only: without THP, 4 KB pages */
      return hand_out(base, FROM_MMAP, total);
    }
  }
  char *raw = bytes < SIZE_MAX - padded ? malloc(bytes + padded) : NULL;
  if (!raw) return out_of_memory();
  return hand_out(raw, FROM_MALLOC, 0);
}

void *scanaot_aligned_alloc(size_t alignment, size_t bytes) {
  if (alignment <= ALIGNMENT) return scanaot_alloc(bytes);
  if (bytes > SIZE_MAX - alignment - 2 * HEADER) return out_of_memory();
  char *inner = scanaot_alloc(bytes + alignment + HEADER);
  if (!inner) return NULL;
  char *aligned = (char *)(((uintptr_t)inner + HEADER + alignment - 1) & ~(uintptr_t)(alignment - 1));
  block *b = (block *)(aligned - HEADER);
  b->kind = ALIGNED;
  b->extent = (uint64_t)(aligned - inner);
  return aligned;
}

void scanaot_free(void *ptr) {
  if (!ptr) return;
  block *b = (block *)((char *)ptr - HEADER);
  if (b->kind == ALIGNED) {
    scanaot_free((char *)ptr - b->extent);
    return;
  }
  if (guarded) untrack(b);
  release(b);
}
