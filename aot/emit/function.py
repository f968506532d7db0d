"""Emission: the traced graph becomes a `func.func` on upstream tensor/linalg/arith/math
ops plus `scan.*` ops. Each op's rule sits in its family module (scanaot.ops.*,
scanaot.scan.emit), registered in `graph.rules.EMISSION`; this module walks the graph
and calls them.

Every emitted function returns an extra `i32` status: runtime checks (indices,
shapes, n_steps) OR their bit into it instead of aborting (see runtime/status.py).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, bufferization, func, memref, tensor

from ..graph.basic import Constant, Variable, toposort
from ..graph.rules import emission_rule
from ..runtime import status as st
from .builders import DYN, conform, dim, element_type, i32_const, index_const, index_min, memref_type, \
    merge_status, tensor_type


_NO_SITE = -1  # as unsigned, above every site (minui)


class ModuleEmitter:
    """Owns the module being built, names the outlined step functions and numbers the
    run-time checks of the public function being emitted (its manifest's `checks`)."""

    def __init__(self, module: ir.Module, tiled_matmuls: bool = True):
        self.module = module
        # matrix products as `scan.matmul`, register-tiled per CPU variant later
        # (passes/tile_matmuls.py); False on the cuda target, where a product is a
        # linalg.generic whose (i, j) map to GPU threads
        self.tiled_matmuls = tiled_matmuls
        self._names: set[str] = set()
        self._declared: dict[tuple, str] = {}
        self.checks: list[str] = []

    def site(self, description: str) -> int:
        """The number the status records for this check (1-based; 0 past MAX_SITE)."""
        self.checks.append(description)
        return len(self.checks) if len(self.checks) <= st.MAX_SITE else 0

    def unique(self, base: str) -> str:
        name, k = base, 0
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def declaration(self, base: str, arg_types: Sequence[ir.Type], result_types: Sequence[ir.Type]) -> str:
        """A private function declared once per signature: calls to it stand for work a
        later pass emits in their place (`scan.matmul` calls: passes/tile_matmuls.py)."""
        key = (base, tuple(map(str, arg_types)), tuple(map(str, result_types)))
        if key not in self._declared:
            with ir.InsertionPoint(self.module.body):
                fn = func.FuncOp(self.unique(f"scanaot_{base}"), (list(arg_types), list(result_types)),
                                 visibility="private")
            self._declared[key] = fn.sym_name.value
        return self._declared[key]

    def new_function(self, name: str, arg_types: Sequence[ir.Type], result_types: Sequence[ir.Type],
                     private: bool = False) -> func.FuncOp:
        if not private:
            self._names.add(name)  # public names are exact: they are the library's symbols
        with ir.InsertionPoint(self.module.body):
            # private helpers get the library's prefix, clear of libc and libm names
            fn = func.FuncOp(self.unique(f"scanaot_{name}") if private else name,
                             (list(arg_types), list(result_types)))
        if private:
            fn.attributes["sym_visibility"] = ir.StringAttr.get("private")
        fn.add_entry_block()
        return fn


class FunctionEmitter:
    """Emits the graph between some input variables and some outputs into one function."""

    def __init__(self, module: ModuleEmitter, fn: func.FuncOp, inputs: Sequence[Variable], context: str = ""):
        self.module = module
        self.fn = fn
        self.context = context  # where this function sits, for check descriptions: "scan 'h' step: "
        self.node = None        # the node being emitted
        self.capacity: dict[Variable, ir.Value] = {}  # until results -> rows their output buffer has
        self.block = fn.entry_block
        self.values: dict[Variable, ir.Value] = dict(zip(inputs, fn.entry_block.arguments))
        # inputs that stay the same on every call of this function (a scan step's
        # non-sequences): what depends only on them is computed once per loop
        self.invariant: set[Variable] = set()
        self.per_step = False  # a scan's step function (its products: a layer's width deep)
        with ir.InsertionPoint(self.block):
            self._status = i32_const(0)
        # the checks since the status was last read: per kind bit, whether all held
        # (i1); the least failing site (i32, shifted; _NO_SITE if none failed)
        self._held: dict[int, ir.Value] = {}
        self._first_site: ir.Value | None = None

    def check(self, ok: ir.Value, bit: int, what: str | None = None) -> None:
        """Record `bit` and this check's site in the status unless `ok` (an i1) holds.
        `what` describes the check; by default, the node being emitted.

        Three ops a check (the status word's merge takes five): the checks' sites
        grow in emission order, so the first failing one is the least; the status
        word is made from them when read (`status`)."""
        site = self.module.site(self.context + (what or describe_node(self.node)))
        self._held[bit] = arith.andi(self._held[bit], ok) if bit in self._held else ok
        if site:
            failed_site = arith.select(ok, i32_const(_NO_SITE), i32_const(site << st.SITE_SHIFT))
            self._first_site = failed_site if self._first_site is None else arith.minui(self._first_site, failed_site)

    @property
    def status(self) -> ir.Value:
        """The status word (i32) of every check so far (runtime/status.py), made at the
        insertion point from the checks since the last read."""
        if self._held:
            new = i32_const(0)
            for bit, held in self._held.items():
                new = arith.ori(new, arith.select(held, i32_const(0), i32_const(bit)))
            if self._first_site is not None:
                none = arith.cmpi(arith.CmpIPredicate.eq, self._first_site, i32_const(_NO_SITE))
                new = arith.ori(new, arith.select(none, i32_const(0), self._first_site))
            self._held, self._first_site = {}, None
            self._status = merge_status(self._status, new)
        return self._status

    @status.setter
    def status(self, value: ir.Value) -> None:
        assert not self._held, "status set over checks not merged into it"
        self._status = value

    def value(self, var: Variable) -> ir.Value:
        if var in self.values:
            return self.values[var]
        if isinstance(var, Constant):
            v = conform(self._constant(var), var.type)
            self.values[var] = v
            return v
        raise KeyError(f"no value for {var!r} while emitting {self.fn.name}")

    def _constant(self, var: Constant) -> ir.Value:
        data = var.data.astype(np.uint8) if var.dtype == "bool" else var.data
        ttype = ir.RankedTensorType.get(list(data.shape), element_type(var.dtype))
        if data.ndim == 0:
            scalar = data.item()
            elem = element_type(var.dtype)
            attr = (ir.FloatAttr.get(elem, float(scalar)) if var.dtype.startswith("float")
                    else ir.IntegerAttr.get(elem, int(scalar)))
            attr = ir.DenseElementsAttr.get_splat(ttype, attr)
        else:
            attr = ir.DenseElementsAttr.get(np.ascontiguousarray(data), type=ttype)
        return arith.constant(ttype, attr)

    def emit(self, outputs: Sequence[Variable]) -> list[ir.Value]:
        """Emit every node the outputs need (at the current insertion point)."""
        for node in toposort(outputs, stop=list(self.values)):
            self.node = node
            results = emission_rule(node.op)(self, node, [self.value(v) for v in node.inputs])
            for var, value in zip(node.outputs, results):
                self.values[var] = conform(value, var.type)
        return [self.value(v) for v in outputs]


def describe_node(node) -> str:
    """A check site for error messages: the op and its operands, named as in the graph."""
    if node is None:
        return "a check"
    return f"{node.op} of {', '.join(describe_value(v) for v in node.inputs)}"


def describe_value(var: Variable) -> str:
    """A variable's name, or the op that computed it, with its dtype and rank."""
    if var.name:
        label = repr(var.name)
    elif isinstance(var, Constant):
        label = f"the constant {var.data.tolist()!r}" if var.data.size <= 4 else "a constant"
    elif var.owner is not None:
        label = f"the result of {var.owner.op}"
    else:
        label = "an unnamed variable"
    return f"{label} ({var.dtype}, ndim={var.ndim})"


def emit_program(name: str, inputs: Sequence[Variable], outputs: Sequence[Variable]) -> ir.Module:
    """A module with one public function (see `emit_function`)."""
    module = ir.Module.create()
    emit_function(ModuleEmitter(module), name, inputs, outputs)
    return module


def emit_function(emitter: ModuleEmitter, name: str, inputs: Sequence[Variable],
                  outputs: Sequence[Variable]) -> list[str]:
    """One public function in destination-passing style:

        i32 name(inputs..., out_0 ... out_n-1 (memrefs), dims (memref<K x i64>))

    The caller allocates each output with the shape the manifest states (an upper
    bound for `until` results); the kernel writes each result into its output, and
    every output's actual dims into `dims` (K = sum of the outputs' ranks). It
    returns the status bits (0 = every run-time check passed).

    Returns the descriptions of its run-time checks (the manifest's `checks`): the
    status records 1 + the index of the first that failed (runtime/status.py).
    """
    total_rank = sum(v.ndim for v in outputs)
    i64 = ir.IntegerType.get_signless(64)
    arg_types = ([tensor_type(v.type) for v in inputs] + [memref_type(v.type) for v in outputs]
                 + [ir.MemRefType.get([max(total_rank, 1)], i64)])
    fn = emitter.new_function(name, arg_types, [ir.IntegerType.get_signless(32)])
    fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
    no_write = ir.DictAttr.get({"bufferization.writable": ir.BoolAttr.get(False)})
    fn.arg_attrs = ir.ArrayAttr.get([no_write] * len(inputs)
                                    + [ir.DictAttr.get({})] * (len(outputs) + 1))
    emitter.checks = []
    body = FunctionEmitter(emitter, fn, inputs)
    args = list(fn.entry_block.arguments)
    out_args, dims_arg = args[len(inputs):len(inputs) + len(outputs)], args[-1]
    with ir.InsertionPoint(body.block):
        _record_capacities(body, outputs, out_args)
        values = body.emit(outputs)
        position = 0
        for value, var, dest in zip(values, outputs, out_args):
            position = _store_output(body, value, var, dest, dims_arg, position)
        func.ReturnOp([body.status])
    return emitter.checks


def _record_capacities(fe: FunctionEmitter, outputs: Sequence[Variable], out_args: Sequence[ir.Value]) -> None:
    """An `until` loop's result returned as an output is allocated by the caller with a
    capacity (the manifest's bound is n_steps): its loop runs at most that many steps
    and reports OUTPUT_FULL when it stops there (scanaot.scan.emit), so the caller can rerun it
    with more rows instead of allocating the bound."""
    for var, dest in zip(outputs, out_args):
        node = var.owner
        if node is not None and node.op.stacks_steps and node.op.condition is not None:
            rows = memref.dim(dest, index_const(0))
            fe.capacity[var] = index_min(fe.capacity[var], rows) if var in fe.capacity else rows


def _store_output(fe: "FunctionEmitter", value: ir.Value, var: Variable, dest: ir.Value,
                  dims_arg: ir.Value, position: int) -> int:
    """Write one result into the caller's buffer and its dims into `dims`.

    A result larger than its buffer (a bug, or a check that already failed) is
    clamped so nothing is written outside the buffer; SHAPE_MISMATCH is set.
    """
    sizes = []
    for axis in range(var.ndim):
        actual = dim(value, axis)
        capacity = memref.dim(dest, index_const(axis))
        fe.check(arith.cmpi(arith.CmpIPredicate.ule, actual, capacity), st.SHAPE_MISMATCH,
                 f"the result {describe_value(var)} fits its output buffer")
        size = arith.minui(actual, capacity)
        memref.store(arith.index_cast(ir.IntegerType.get_signless(64), size), dims_arg,
                     [index_const(position)])
        sizes.append(size)
        position += 1
    if var.ndim:
        rtype = ir.RankedTensorType.get([DYN] * var.ndim, element_type(var.dtype))
        value = tensor.ExtractSliceOp(rtype, value, [], sizes, [], [0] * var.ndim, [DYN] * var.ndim,
                                      [1] * var.ndim).result
        layout = ir.StridedLayoutAttr.get(0, [DYN] * (var.ndim - 1) + [1])
        view_type = ir.MemRefType.get([DYN] * var.ndim, element_type(var.dtype), layout)
        dest = memref.SubViewOp(view_type, dest, [], sizes, [], [0] * var.ndim, [DYN] * var.ndim,
                                [1] * var.ndim).result
    bufferization.MaterializeInDestinationOp(None, value, dest, restrict=True, writable=True)
    return position
