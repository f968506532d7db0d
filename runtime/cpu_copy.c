/* Strided copies of cpu kernels: the `memrefCopy` the LLVM lowering of memref.copy
 * calls when it cannot prove both buffers contiguous (a copy of two or more
 * dimensions into or out of a subview: a slice of a stacked output; copies of one
 * dimension are vector loops in the kernel, aot/passes/copies.py).
 *
 * One call instead of a vector loop in the kernel per copy: the GRU gradient holds
 * 47 copies, a sixth of its LLVM IR as loops, which every CPU variant sent through
 * opt and llc (docs/benchmarks.md). Rows whose elements are contiguous on both
 * sides are copied by memmove, one call a row (as fast as memcpy, and defined should
 * a row ever overlap its target); anything else element by element, in order.
 * The signature is the one MLIR's lowering emits (its CRunnerUtils ABI): the
 * element size in bytes and two unranked descriptors. The symbol stays inside the
 * library (the link's version script exports only the kernels). */
#include <stdint.h>
#include <string.h>

/* A ranked descriptor as the lowering lays it out: allocated and aligned pointers,
 * offset, then `rank` sizes and `rank` strides (in elements). */
typedef struct {
  char *allocated;
  char *aligned;
  int64_t offset;
  int64_t sizes_and_strides[];
} descriptor;

typedef struct {
  int64_t rank;
  descriptor *ranked;
} unranked;

/* Copies the rows of the innermost axis; `index` walks the outer axes. */
void memrefCopy(int64_t element_size, unranked *source, unranked *target) {
  int64_t rank = source->rank;
  const descriptor *src = source->ranked, *dst = target->ranked;
  const int64_t *sizes = src->sizes_and_strides;
  const int64_t *src_strides = sizes + rank, *dst_strides = dst->sizes_and_strides + rank;
  const char *from = src->aligned + src->offset * element_size;
  char *to = dst->aligned + dst->offset * element_size;
  if (rank == 0) {
    memcpy(to, from, element_size);
    return;
  }
  for (int64_t axis = 0; axis < rank; axis++)
    if (sizes[axis] == 0) return;
  int64_t inner = rank - 1, columns = sizes[inner];
  int contiguous = src_strides[inner] == 1 && dst_strides[inner] == 1;
  int64_t index[rank > 1 ? rank - 1 : 1];
  memset(index, 0, sizeof index);
  for (;;) {
    int64_t src_at = 0, dst_at = 0;
    for (int64_t axis = 0; axis < inner; axis++) {
      src_at += index[axis] * src_strides[axis];
      dst_at += index[axis] * dst_strides[axis];
    }
    if (contiguous) {
      memmove(to + dst_at * element_size, from + src_at * element_size, columns * element_size);
    } else {
      for (int64_t c = 0; c < columns; c++)
        memmove(to + (dst_at + c * dst_strides[inner]) * element_size,
                from + (src_at + c * src_strides[inner]) * element_size, element_size);
    }
    int64_t axis = inner - 1;
    for (; axis >= 0; axis--) {
      if (++index[axis] < sizes[axis]) break;
      index[axis] = 0;
    }
    if (axis < 0) return;
  }
}
