"""ctypes mirrors of MLIR's memref descriptors (`{allocated, aligned, offset, sizes[R], strides[R]}`).

This is the ABI of the kernels' C interface, in one place. Descriptors built for
inputs point into numpy arrays the caller owns; nothing here frees them.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

CTYPES = {
    "bool": ctypes.c_uint8, "int8": ctypes.c_int8, "int16": ctypes.c_int16,
    "int32": ctypes.c_int32, "int64": ctypes.c_int64,
    "float32": ctypes.c_float, "float64": ctypes.c_double,
}


@lru_cache(maxsize=None)
def descriptor_type(rank: int) -> type[ctypes.Structure]:
    fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p), ("offset", ctypes.c_int64)]
    if rank:
        fields += [("sizes", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
    return type(f"MemRef{rank}D", (ctypes.Structure,), {"_fields_": fields})


def descriptor_for(array: np.ndarray) -> ctypes.Structure:
    """A descriptor viewing a C-contiguous array (the array must outlive the call)."""
    desc = descriptor_type(array.ndim)()
    ptr = array.ctypes.data
    desc.allocated = ptr
    desc.aligned = ptr
    desc.offset = 0
    if array.ndim:
        desc.sizes[:] = array.shape
        desc.strides[:] = [s // array.itemsize for s in array.strides]
    return desc


def results_type(ranks: tuple[int, ...]) -> type[ctypes.Structure]:
    """The struct a multi-result kernel fills: one descriptor per output, then the i32 status."""
    fields = [(f"out{i}", descriptor_type(r)) for i, r in enumerate(ranks)]
    fields.append(("status", ctypes.c_int32))
    return type("Results", (ctypes.Structure,), {"_fields_": fields})


def copy_out(desc: ctypes.Structure, rank: int, dtype: str) -> np.ndarray:
    """A numpy copy of the data a result descriptor points at."""
    np_dtype = np.dtype("uint8" if dtype == "bool" else dtype)
    shape = tuple(desc.sizes) if rank else ()
    strides = tuple(s * np_dtype.itemsize for s in desc.strides) if rank else ()
    count = int(np.prod(shape)) if rank else 1
    if count == 0:
        out = np.empty(shape, dtype=np_dtype)
    else:
        base = desc.aligned + desc.offset * np_dtype.itemsize
        extent = sum((d - 1) * s for d, s in zip(shape, strides)) if rank else 0
        raw = (ctypes.c_char * (extent + np_dtype.itemsize)).from_address(base)
        view = np.ndarray(shape, dtype=np_dtype, buffer=raw, strides=strides)
        out = np.array(view, copy=True)
    return out.view("bool") if dtype == "bool" else out
