"""ctypes mirrors of MLIR's memref descriptors (`{allocated, aligned, offset, sizes[R], strides[R]}`).

This is the ABI of the kernels' C interface, in one place. Descriptors built for
inputs point into numpy arrays the caller owns; nothing here frees them.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

@lru_cache(maxsize=None)
def descriptor_type(rank: int) -> type[ctypes.Structure]:
    fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p), ("offset", ctypes.c_int64)]
    if rank:
        fields += [("sizes", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
    return type(f"MemRef{rank}D", (ctypes.Structure,), {"_fields_": fields})


def descriptor_for(array: np.ndarray) -> ctypes.Structure:
    """A descriptor viewing an array (the array must outlive the call)."""
    desc = descriptor_type(array.ndim)()
    ptr = array.ctypes.data
    desc.allocated = ptr
    desc.aligned = ptr
    desc.offset = 0
    if array.ndim:
        desc.sizes[:] = array.shape
        desc.strides[:] = [s // array.itemsize if array.itemsize else 0 for s in array.strides]
    return desc
