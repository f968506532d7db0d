"""Running upstream MLIR passes from their textual pipeline, and the error a failed
pass (or a code generation tool) raises.

A pipeline runs through the MLIR C API's mlirPassManagerRunOnOp, called by ctypes,
which releases the GIL for the call: the bindings' PassManager.run holds it for the
whole run, so the CPU variants' back ends (each in its own thread and MLIR context,
targets/pipeline.py) could not overlap. The errors a failed run reports are collected
by a C API diagnostic handler attached to the module's context for the run (ctypes
callbacks take the GIL; the bindings' Python handlers cannot be called without it).
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import mlir._mlir_libs
from mlir import ir
from mlir.passmanager import PassManager


class CompileError(RuntimeError):
    """A pass or a code generation tool failed; the message carries its diagnostics."""


class _StringRef(ctypes.Structure):
    _fields_ = [("data", ctypes.c_char_p), ("length", ctypes.c_size_t)]


_STRING_CALLBACK = ctypes.CFUNCTYPE(None, _StringRef, ctypes.c_void_p)
_DIAGNOSTIC_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int8, ctypes.c_void_p, ctypes.c_void_p)
_ERROR = 0  # MlirDiagnosticError
_SEVERITY = {0: "error", 1: "warning", 2: "note", 3: "remark"}


@functools.cache
def _capi() -> ctypes.CDLL:
    """The bindings' own C API library (already loaded by `mlir.ir`: the same pass
    registry and contexts), with the signatures used here."""
    path = Path(mlir._mlir_libs.__file__).parent / "libMLIRPythonCAPI.so"
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        raise CompileError(f"the MLIR bindings' C API library {path} could not be loaded ({err}); "
                           "reinstall scanaot[compiler]") from None
    ptr, i8 = ctypes.c_void_p, ctypes.c_int8
    for name, restype, argtypes in (
            ("mlirPassManagerRunOnOp", i8, [ptr, ptr]),
            ("mlirContextAttachDiagnosticHandler", ctypes.c_uint64, [ptr, _DIAGNOSTIC_HANDLER, ptr, ptr]),
            ("mlirContextDetachDiagnosticHandler", None, [ptr, ctypes.c_uint64]),
            ("mlirDiagnosticGetSeverity", ctypes.c_int, [ptr]),
            ("mlirDiagnosticGetLocation", ptr, [ptr]),
            ("mlirDiagnosticPrint", None, [ptr, _STRING_CALLBACK, ptr]),
            ("mlirLocationPrint", None, [ptr, _STRING_CALLBACK, ptr]),
            ("mlirDiagnosticGetNumNotes", ctypes.c_ssize_t, [ptr]),
            ("mlirDiagnosticGetNote", ptr, [ptr, ctypes.c_ssize_t])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


_capsule_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", ctypes.pythonapi))
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))


def _pointer(obj) -> int:
    """The C API handle inside a bindings object (its _CAPIPtr capsule)."""
    capsule = obj._CAPIPtr
    return _capsule_pointer(capsule, _capsule_name(capsule))


def _printed(print_fn, handle: int) -> str:
    parts: list[bytes] = []
    callback = _STRING_CALLBACK(lambda ref, _: parts.append(ctypes.string_at(ref.data, ref.length)))
    print_fn(handle, callback, None)
    return b"".join(parts).decode(errors="replace")


def _diagnostic_text(lib: ctypes.CDLL, diagnostic: int, indent: str = "") -> str:
    severity = _SEVERITY.get(lib.mlirDiagnosticGetSeverity(diagnostic), "diagnostic")
    where = _printed(lib.mlirLocationPrint, lib.mlirDiagnosticGetLocation(diagnostic))
    lines = [f"{indent}{severity}: {where}: {_printed(lib.mlirDiagnosticPrint, diagnostic)}"]
    lines += [_diagnostic_text(lib, lib.mlirDiagnosticGetNote(diagnostic, i), indent + "  ")
              for i in range(lib.mlirDiagnosticGetNumNotes(diagnostic))]
    return "\n".join(lines)


def run_pipeline(module: ir.Module, pipeline: str, stage: str) -> None:
    """Run the textual `pipeline` on `module` with the GIL released; a failure raises
    CompileError naming `stage` with the errors the passes reported."""
    lib = _capi()
    pm = PassManager.parse(pipeline, context=module.context)
    errors: list[str] = []

    def capture(diagnostic: int, _user_data: int) -> int:
        if lib.mlirDiagnosticGetSeverity(diagnostic) != _ERROR:
            return 0  # not handled: warnings and remarks go where they went before
        errors.append(_diagnostic_text(lib, diagnostic))
        return 1

    handler = _DIAGNOSTIC_HANDLER(capture)  # referenced until detached
    context = _pointer(module.context)
    handler_id = lib.mlirContextAttachDiagnosticHandler(context, handler, None, None)
    try:
        succeeded = lib.mlirPassManagerRunOnOp(_pointer(pm), _pointer(module.operation))
    finally:
        lib.mlirContextDetachDiagnosticHandler(context, handler_id)
    if not succeeded:
        raise CompileError(f"stage {stage}: failure while executing pass pipeline "
                           f"{pipeline}:\n" + ("\n".join(errors) or "(no error was reported)"))
