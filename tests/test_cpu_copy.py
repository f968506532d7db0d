"""runtime/cpu_copy.c: the strided copy a cpu kernel's memref.copy calls (memrefCopy).

The C function is compiled on its own and called through ctypes with descriptors laid
out as the LLVM lowering lays them out, on numpy views of every rank, element size
and stride; then kernels whose copies go through it are checked against numpy, and
the symbol is checked to stay inside the library."""
import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at
from scanaot.targets.toolchain import _compiler

SOURCE = Path(__file__).parents[1] / "runtime" / "cpu_copy.c"


@pytest.fixture(scope="module")
def memref_copy(tmp_path_factory):
    so = tmp_path_factory.mktemp("cpu_copy") / "cpu_copy.so"
    subprocess.run([_compiler(), "-O2", "-fPIC", "-shared", "-std=gnu11", str(SOURCE), "-o", str(so)], check=True)
    fn = ctypes.CDLL(str(so)).memrefCopy
    fn.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p]
    fn.restype = None
    return fn


class Unranked(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_int64), ("descriptor", ctypes.c_void_p)]


def _descriptor(base: np.ndarray, view: np.ndarray):
    """(unranked descriptor, what keeps it alive) of `view`, a view into `base`: the
    aligned pointer is `base`'s start, the offset and strides in elements."""
    size = base.itemsize
    offset = (view.__array_interface__["data"][0] - base.ctypes.data) // size
    fields = [base.ctypes.data, base.ctypes.data, offset, *view.shape, *(s // size for s in view.strides)]
    ranked = (ctypes.c_int64 * len(fields))(*fields)
    unranked = Unranked(view.ndim, ctypes.addressof(ranked))
    return unranked, ranked


def _strided_view(rng, shape, dtype):
    """A view of `shape` into a larger buffer: a random offset, every axis stepped by
    1-3 elements (so rows are contiguous or not), axes in a random order."""
    steps = rng.integers(1, 4, size=len(shape))
    order = rng.permutation(len(shape))
    extents = [shape[a] * steps[a] for a in order]
    base = (rng.normal(size=int(np.prod(extents)) + 5) * 100).astype(dtype)
    start = int(rng.integers(0, 5))
    full = base[start:start + int(np.prod(extents))].reshape(extents)
    view = full[(*(slice(None, None, int(steps[a])) for a in order), Ellipsis)]
    return base, view.transpose(np.argsort(order))


@pytest.mark.parametrize("dtype", [np.int8, np.float16, np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("rank", [0, 1, 2, 3, 4])
def test_memref_copy_copies_every_strided_view(memref_copy, dtype, rank):
    rng = np.random.default_rng(rank * 10 + np.dtype(dtype).itemsize)
    for _ in range(20):
        shape = tuple(int(n) for n in rng.integers(1, 6, size=rank))
        src_base, src = _strided_view(rng, shape, dtype)
        dst_base, dst = _strided_view(rng, shape, dtype)
        untouched = dst_base.copy()
        untouched_view = _view_like(untouched, dst_base, dst)
        untouched_view[...] = src
        src_desc, keep_src = _descriptor(src_base, src)
        dst_desc, keep_dst = _descriptor(dst_base, dst)
        memref_copy(np.dtype(dtype).itemsize, ctypes.byref(src_desc), ctypes.byref(dst_desc))
        np.testing.assert_array_equal(dst, src)
        np.testing.assert_array_equal(dst_base, untouched)  # nothing outside the view written


def _view_like(other_base: np.ndarray, base: np.ndarray, view: np.ndarray) -> np.ndarray:
    """The view of `other_base` at `view`'s place in `base`."""
    offset = view.__array_interface__["data"][0] - base.ctypes.data
    return np.lib.stride_tricks.as_strided(other_base[offset // base.itemsize:], view.shape, view.strides)


def test_memref_copy_of_an_empty_view_writes_nothing(memref_copy):
    src_base = np.arange(12.0)
    dst_base = np.full(12, -1.0)
    src, dst = src_base.reshape(3, 4)[:, :0], dst_base.reshape(3, 4)[:, :0]
    src_desc, keep_src = _descriptor(src_base, src)
    dst_desc, keep_dst = _descriptor(dst_base, dst)
    memref_copy(8, ctypes.byref(src_desc), ctypes.byref(dst_desc))
    assert (dst_base == -1.0).all()


def test_kernel_copies_call_the_runtime_copy_and_match_numpy():
    """A scan whose state is transposed each step: its copies between the state and the
    stacked rows are memref.copy, lowered to memrefCopy calls (no copy loops); the
    numbers match numpy, and memrefCopy is not exported by the library."""
    X, h0 = at.dmatrix("X"), at.dmatrix("h0")
    out, _ = aesara.scan(lambda x, h: h.T * 0.5 + x[:, None], sequences=X, outputs_info=h0)
    f = aesara.function([X, h0], out)
    assert "linalg.copy" not in f.ir("memref") and "memref.copy" in f.ir("memref")
    assert "call @memrefCopy" in f.ir("llvm")
    rng = np.random.default_rng(0)
    for n in (1, 4, 7):
        xv, hv = rng.normal(size=(5, n)), rng.normal(size=(n, n))
        want, h = [], hv
        for x in xv:
            h = h.T * 0.5 + x[:, None]
            want.append(h)
        np.testing.assert_allclose(f(xv, hv), np.array(want), rtol=1e-12)
    exported = subprocess.run(["nm", "-D", "--defined-only", str(f.library_path)], capture_output=True,
                              text=True, check=True).stdout
    assert "memrefCopy" not in exported
