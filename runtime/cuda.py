"""Running cuda libraries: driver checks, buffers in managed memory, device arrays in and out.

A cuda library's host code calls the driver through the shim compiled into it
(runtime/cuda_shim.c); this module only needs ctypes and numpy. Before the
library is opened, `check_device` makes sure a driver and a GPU that can run the
library's device code exist, so a machine without one gets a clear error rather
than a loader failure.

Buffers (see aot/passes/to_gpu.py for why): numpy arguments are copied into
managed memory and results copied back out. Device arrays (anything with
`__cuda_array_interface__` or a CUDA `__dlpack__`) are passed by pointer, without
a copy, unless the manifest says host code reads that argument (`host_access`):
then they go through a managed staging buffer. When any argument is a device
array, results come back as `DeviceArray` (managed memory, zero-copy to CuPy or
PyTorch through `__cuda_array_interface__`, and readable by numpy).
"""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from .elf import LibraryError


class CudaError(RuntimeError):
    """The driver reported an error while a kernel ran (the message says which call)."""


_DRIVER = "libcuda.so.1"


def gpu_available() -> bool:
    """True when the NVIDIA driver is installed and sees at least one GPU."""
    try:
        driver = ctypes.CDLL(_DRIVER)
    except OSError:
        return False
    count = ctypes.c_int(0)
    return driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0


def check_device(manifest: dict, path: Any) -> None:
    """Raise LibraryError unless this machine has a GPU that can run the library's code."""
    target = manifest["target"]
    arch = target.get("arch", "sm_90")
    code = target.get("device_code", {}).get("format", "cubin")
    label = f"{path}: built for CUDA ({arch}, {code})"
    try:
        driver = ctypes.CDLL(_DRIVER)
    except OSError:
        raise LibraryError(f"{label}, but this machine has no NVIDIA driver ({_DRIVER} not found); "
                           "load it on a machine with an NVIDIA GPU, or compile with target='cpu'") from None
    status = driver.cuInit(0)
    count = ctypes.c_int(0)
    if status == 0:
        status = driver.cuDeviceGetCount(ctypes.byref(count))
    if status != 0 or count.value == 0:
        raise LibraryError(f"{label}, but the NVIDIA driver finds no usable GPU "
                           f"({_driver_error(driver, status) if status else 'no devices'})")
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    device = ctypes.c_int(0)
    driver.cuDeviceGet(ctypes.byref(device), 0)
    driver.cuDeviceGetAttribute(ctypes.byref(major), 75, device)
    driver.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)
    if not can_run(arch, code, (major.value, minor.value)):
        raise LibraryError(f"{label}; this GPU is sm_{major.value}{minor.value}, which cannot run it: "
                           f"compile with arch='sm_{major.value}{minor.value}'")


def can_run(arch: str, code: str, capability: tuple[int, int]) -> bool:
    """cubin: same major version, minor not older (sm_XYa: exactly XY); PTX: any newer GPU."""
    digits = arch[3:]
    exact = digits.endswith("a")
    built = (int(digits.rstrip("a")) // 10, int(digits.rstrip("a")) % 10)
    if exact:
        return capability == built
    if code == "ptx":
        return capability >= built
    return capability[0] == built[0] and capability[1] >= built[1]


def _driver_error(driver: ctypes.CDLL, status: int) -> str:
    text = ctypes.c_char_p()
    if driver.cuGetErrorString(status, ctypes.byref(text)) == 0 and text.value:
        return f"{text.value.decode()} (CUDA error {status})"
    return f"CUDA error {status}"


class Shim:
    """The library's own driver entry points (scanaot_cuda_*)."""

    def __init__(self, handle: ctypes.CDLL, path: Any):
        self.path = path
        self.alloc = handle.scanaot_cuda_alloc
        self.alloc.restype, self.alloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        self.free = handle.scanaot_cuda_free
        self.free.restype, self.free.argtypes = None, [ctypes.c_void_p]
        self._copy = handle.scanaot_cuda_copy
        self._copy.restype = ctypes.c_int
        self._copy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        self._take_error = handle.scanaot_cuda_take_error
        self._take_error.restype, self._take_error.argtypes = ctypes.c_int, [ctypes.c_char_p, ctypes.c_size_t]
        self._synchronize = handle.scanaot_cuda_synchronize
        self._synchronize.restype = ctypes.c_int

    def raise_if_failed(self, what: str) -> None:
        message = ctypes.create_string_buffer(512)
        if self._take_error(message, len(message)):
            raise CudaError(f"{what}: {message.value.decode(errors='replace')}")

    def copy(self, dst: int, src: int, nbytes: int) -> None:
        if nbytes and self._copy(dst, src, nbytes):
            self.raise_if_failed("copying a device buffer")

    def synchronize(self) -> None:
        if self._synchronize():
            self.raise_if_failed("waiting for the device")

    def managed(self, nbytes: int) -> int:
        ptr = self.alloc(max(nbytes, 1))
        try:
            self.raise_if_failed(f"allocating {nbytes} bytes of managed memory")
        except CudaError:
            self.free(ptr)  # the shim fell back to host memory so that nothing crashed
            raise
        return ptr


class DeviceView:
    """A caller's device array, seen through CUDA Array Interface or DLPack (no copy)."""

    def __init__(self, ptr: int, shape: tuple[int, ...], dtype: np.dtype, owner: Any, contiguous: bool,
                 writable: bool = True, keepalive: Any = None):
        self.ptr, self.shape, self.dtype, self.owner = ptr, shape, dtype, owner
        self.contiguous, self.writable = contiguous, writable
        self._keepalive = keepalive  # a DLPack capsule: releases the tensor when collected
        self.ndim = len(shape)
        self.nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def device_view(value: Any) -> DeviceView | None:
    """A DeviceView of `value` if it is a CUDA device array, else None."""
    if isinstance(value, (DeviceView, DeviceArray)):
        return value.view() if isinstance(value, DeviceArray) else value
    cai = getattr(value, "__cuda_array_interface__", None)
    if cai is not None:
        shape = tuple(int(d) for d in cai["shape"])
        dtype = np.dtype(cai["typestr"])
        ptr, readonly = cai["data"]
        return DeviceView(int(ptr or 0), shape, dtype, value, _c_contiguous(shape, cai.get("strides"), dtype),
                          not readonly)
    if hasattr(value, "__dlpack__") and hasattr(value, "__dlpack_device__"):
        device_type, _ = value.__dlpack_device__()
        if int(device_type) in (_KDL_CUDA, _KDL_CUDA_MANAGED):
            return _from_dlpack(value)
    return None


_KDL_CUDA, _KDL_CUDA_MANAGED = 2, 13
_DL_CODES = {0: "i", 1: "u", 2: "f", 6: "b"}


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32),
                ("ndim", ctypes.c_int32), ("code", ctypes.c_uint8), ("bits", ctypes.c_uint8),
                ("lanes", ctypes.c_uint16), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


def _from_dlpack(value: Any) -> DeviceView:
    """Read a DLPack capsule's tensor; the capsule (kept in the view) keeps the memory alive."""
    capsule = value.__dlpack__()
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    tensor = _DLTensor.from_address(get_pointer(capsule, b"dltensor"))
    if tensor.code not in _DL_CODES or tensor.lanes != 1:
        raise TypeError(f"unsupported DLPack dtype (code {tensor.code}, {tensor.bits} bits, {tensor.lanes} lanes)")
    dtype = np.dtype("bool") if tensor.code == 6 else np.dtype(f"{_DL_CODES[tensor.code]}{tensor.bits // 8}")
    shape = tuple(tensor.shape[i] for i in range(tensor.ndim))
    strides = None if not tensor.strides else [tensor.strides[i] * dtype.itemsize for i in range(tensor.ndim)]
    return DeviceView((tensor.data or 0) + tensor.byte_offset, shape, dtype, value,
                      _c_contiguous(shape, strides, dtype), keepalive=capsule)


def _c_contiguous(shape: tuple[int, ...], strides: Any, dtype: np.dtype) -> bool:
    if strides is None:
        return True
    expected = dtype.itemsize
    for size, stride in zip(reversed(shape), reversed(list(strides))):
        if size > 1 and stride != expected:
            return False
        expected *= size
    return True


class DeviceArray:
    """A result in CUDA managed memory: hand it to CuPy/PyTorch (`__cuda_array_interface__`,
    no copy) or read it with numpy (`np.asarray`, `.numpy()`). Freed when collected."""

    def __init__(self, shim: Shim, ptr: int, shape: tuple[int, ...], dtype: np.dtype, base: Any = None):
        self._shim, self._ptr, self.shape, self.dtype, self._base = shim, ptr, shape, dtype, base
        self.ndim = len(shape)

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"version": 3, "shape": self.shape, "typestr": self.dtype.str, "data": (self._ptr, False),
                "strides": None, "stream": None}

    def view(self) -> DeviceView:
        return DeviceView(self._ptr, self.shape, self.dtype, self, True)

    def numpy(self) -> np.ndarray:
        """A host copy (managed memory is host-readable once the call returned)."""
        host = np.empty(self.shape, self.dtype)
        if host.nbytes:
            ctypes.memmove(host.ctypes.data, self._ptr, host.nbytes)
        return host

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        host = self.numpy()
        return host.astype(dtype) if dtype is not None else host

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype})"

    def __del__(self) -> None:
        if self._base is None and self._ptr:
            self._shim.free(self._ptr)
            self._ptr = 0
