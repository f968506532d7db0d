"""Calling a kernel of a cuda library: the same checks as on the CPU, buffers in managed memory.

Per call: numpy arguments are copied into managed buffers, device arrays are
passed by pointer (staged through managed memory only where the manifest says
host code dereferences them), outputs are allocated in managed memory, and after
the call the shim's error slot is read before the status bits.
"""
from __future__ import annotations

import ctypes
from typing import Any, Sequence

import numpy as np

from .cuda import DeviceArray, DeviceView, Shim, device_view
from .kernel import _STORAGE, ArgumentError, Kernel
from .stateful import StatefulKernel
from .memref import descriptor_type
from .status import check_status


def descriptor_at(ptr: int, shape: Sequence[int], itemsize: int) -> ctypes.Structure:
    """A descriptor of a C-contiguous buffer at `ptr`."""
    desc = descriptor_type(len(shape))()
    desc.allocated = desc.aligned = ptr
    desc.offset = 0
    if shape:
        desc.sizes[:] = list(shape)
        strides, step = [], 1
        for size in reversed(shape):
            strides.append(step)
            step *= size
        desc.strides[:] = strides[::-1]
    return desc


class CudaKernel(Kernel):
    """One function of a cuda library. Thread-safe: each call has its own buffers and the
    shim gives each thread its own stream."""

    def __init__(self, spec: dict, handle: ctypes.CDLL, path: Any, shim: Shim | None = None):
        self._shim = shim if shim is not None else self._shim  # a subclass may set it first
        super().__init__(spec, handle, path)
        self._arg_staged = [a.get("host_access", True) for a in self.args]
        self._out_staged = [o.get("host_access", True) for o in self.outputs]

    def _fast_path(self):
        return None  # every call takes the checked path: the copies dominate its cost

    def __call__(self, *args: Any, **kwargs: Any):
        return self.call_checked(*args, **kwargs)

    def _check_arg(self, i: int, value: Any):
        view = device_view(value)
        if view is None:
            return super()._check_arg(i, value)
        spec = self.args[i]
        label = f"{self.name}(): argument {spec['name']!r}"
        want = self._dtypes[i]
        if view.dtype != want:
            raise ArgumentError(f"{label}: expected dtype {want}, got a device array of {view.dtype}")
        if view.ndim != spec["ndim"]:
            raise ArgumentError(f"{label}: expected {spec['ndim']} dims, got a device array of shape {view.shape}")
        if not view.contiguous:
            raise ArgumentError(f"{label}: the device array is not C-contiguous; make a contiguous copy")
        for axis, expr in enumerate(spec["shape"]):
            if "const" in expr and view.shape[axis] != expr["const"]:
                raise ArgumentError(f"{label}: dim {axis} must be {expr['const']}, got shape {view.shape}")
        return view

    def call_checked(self, *args: Any, out: Sequence[Any] | None = None, **kwargs: Any):
        values = self._bind(args, kwargs)
        outs_given = None if out is None else self._check_out(out)
        on_device = any(isinstance(v, DeviceView) for v in values) or (
            outs_given is not None and any(isinstance(o, DeviceView) for o in outs_given))
        if on_device:
            self._shim.synchronize()  # the arrays' producers may still be writing them
        shapes = [v.shape for v in values]
        scalars = [self._scalar(v) for v in values]
        self._check_constraints(shapes, scalars)
        wanted = self._output_shapes(shapes, scalars)
        if outs_given is not None:
            for j, (o, shape) in enumerate(zip(outs_given, wanted)):
                if tuple(o.shape) != shape:
                    raise ArgumentError(f"{self.name}(): out[{j}]: expected shape {shape}, got {tuple(o.shape)}")
        owned: list[int] = []  # managed buffers this call allocated
        try:
            arg_ptrs = [self._stage_in(v, staged, owned) for v, staged in zip(values, self._arg_staged)]
            out_ptrs = []
            for j, shape in enumerate(wanted):
                nbytes = int(np.prod(shape, dtype=np.int64)) * self._out_dtypes[j].itemsize
                given = None if outs_given is None else outs_given[j]
                if isinstance(given, DeviceView) and not self._out_staged[j]:
                    out_ptrs.append(given.ptr)
                else:
                    out_ptrs.append(self._shim.managed(nbytes))
                    owned.append(out_ptrs[-1])
            dims_ptr = self._shim.managed(8 * self._dims_length)
            owned.append(dims_ptr)
            descs = ([descriptor_at(p, v.shape, v.dtype.itemsize) for p, v in zip(arg_ptrs, values)]
                     + [descriptor_at(p, s, d.itemsize) for p, s, d in zip(out_ptrs, wanted, self._out_dtypes)]
                     + [descriptor_at(dims_ptr, (self._dims_length,), 8)])
            status = self._fn(*[ctypes.byref(d) for d in descs])
            self._shim.raise_if_failed(f"{self.name}()")
            check_status(status, self.name)
            dims = np.empty(self._dims_length, np.int64)
            ctypes.memmove(dims.ctypes.data, dims_ptr, dims.nbytes)
            results = self._collect(out_ptrs, wanted, dims, outs_given, on_device, owned)
        finally:
            for ptr in owned:
                self._shim.free(ptr)
        return results[0] if len(results) == 1 else tuple(results)

    # -- buffers
    def _stage_in(self, value: Any, staged: bool, owned: list[int]) -> int:
        if isinstance(value, DeviceView):
            if not staged:
                return value.ptr
            ptr = self._shim.managed(value.nbytes)
            owned.append(ptr)
            self._shim.copy(ptr, value.ptr, value.nbytes)
            return ptr
        ptr = self._shim.managed(value.nbytes)
        owned.append(ptr)
        if value.nbytes:
            ctypes.memmove(ptr, value.ctypes.data, value.nbytes)
        return ptr

    def _collect(self, out_ptrs: list[int], wanted: list[tuple], dims: np.ndarray, outs_given: Any,
                 on_device: bool, owned: list[int]) -> list[Any]:
        results, position = [], 0
        for j, (ptr, shape, dtype) in enumerate(zip(out_ptrs, wanted, self._out_dtypes)):
            rank = len(shape)
            actual = tuple(int(d) for d in dims[position:position + rank])
            position += rank
            given = None if outs_given is None else outs_given[j]
            if given is not None:
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if isinstance(given, DeviceView):
                    if ptr != given.ptr:
                        self._shim.copy(given.ptr, ptr, nbytes)
                    results.append(given.owner if actual == shape
                                   else given.owner[tuple(slice(0, d) for d in actual)])
                else:
                    ctypes.memmove(given.ctypes.data, ptr, nbytes)
                    results.append(given if actual == shape else given[tuple(slice(0, d) for d in actual)])
                continue
            host = _host_view(ptr, shape, dtype)[tuple(slice(0, d) for d in actual)]
            if on_device:
                if actual != shape and actual[1:] != shape[1:]:  # not a prefix of rows: compact it
                    compact = self._shim.managed(host.nbytes)
                    _host_view(compact, actual, dtype)[...] = host
                    ptr = compact
                else:
                    owned.remove(ptr)  # the DeviceArray owns it now
                results.append(DeviceArray(self._shim, ptr, actual, np.dtype(self.outputs[j]["dtype"])))
            else:
                result = np.array(host)
                results.append(result.view(np.dtype(self.outputs[j]["dtype"])) if str(dtype) in _STORAGE
                               else result)
        return results

    # -- checks
    def _check_out(self, out: Sequence[Any]) -> list[Any]:
        if len(out) != len(self.outputs):
            raise ArgumentError(f"{self.name}(): out= needs {len(self.outputs)} arrays, got {len(out)}")
        checked = []
        for j, (buf, dtype) in enumerate(zip(out, self._out_dtypes)):
            label = f"{self.name}(): out[{j}]"
            view = device_view(buf)
            if view is not None:
                want = np.dtype(self.outputs[j]["dtype"])
                if view.dtype != want or not view.contiguous or not view.writable:
                    raise ArgumentError(f"{label}: expected a writable C-contiguous {want} device array, "
                                        f"got {view.dtype} (contiguous {view.contiguous}, "
                                        f"writable {view.writable})")
                checked.append(view)
                continue
            if not isinstance(buf, np.ndarray) or buf.dtype != np.dtype(self.outputs[j]["dtype"]):
                got = buf.dtype if isinstance(buf, np.ndarray) else type(buf).__name__
                raise ArgumentError(f"{label}: expected a {self.outputs[j]['dtype']} array, got {got}")
            if not buf.flags.writeable or not buf.flags.c_contiguous:
                raise ArgumentError(f"{label}: must be writable and C-contiguous")
            checked.append(buf.view(dtype) if buf.dtype != dtype else buf)
        return checked

    def _scalar(self, value: Any) -> Any:
        if value.ndim != 0:
            return None
        if isinstance(value, DeviceView):
            host = np.empty((), value.dtype)
            self._shim.copy(host.ctypes.data, value.ptr, value.nbytes)
            return host.item()
        return value.item()


def _host_view(ptr: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A numpy view of managed memory (valid while the buffer lives)."""
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:
        return np.empty(shape, dtype)
    buffer = (ctypes.c_char * (count * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


class StatefulCudaKernel(StatefulKernel, CudaKernel):
    """A cuda function with shared variables: the state's values are passed like any
    argument (staged into managed memory) and its updates stored back after the call."""

    def __init__(self, spec: dict, handle: ctypes.CDLL, path: Any, shim: Shim):
        self._shim = shim
        super().__init__(spec, handle, path)
