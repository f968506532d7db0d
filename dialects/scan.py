"""The `scan` dialect, defined with IRDL from Python.

A loop is a chain of ops threading one `!scan.chain` value, then ops that read
its results:

    %l0 = "scan.loop"(%n) {body = @step, go_backwards = false, until = false}
    %l1 = "scan.sequence"(%l0, %u) {taps = array<i64: -4, 0>}
    %l2 = "scan.state"(%l1, %x0) {taps = array<i64: -3, -1>, keep = "all"}
    %l3 = "scan.collect"(%l2, %d0) {keep = "all"}        // an output with no state
    %l4 = "scan.param"(%l3, %W)
    %xs = "scan.output"(%l4) {index = 0}                 // stacked values of output 0
    %n  = "scan.steps"(%l4)                              // steps run (for until)
    %s  = "scan.status"(%l4)                             // runtime check bits (i32)

Why a chain: IRDL unifies the types inside one variadic operand group, so a
single op cannot take states of different types; one op per loop input keeps
each operand precisely typed by IRDL and leaves the order explicit. IRDL ops
cannot be terminators either, so the step body is an outlined `func.func`
named by `body`: its arguments are every sequence tap, every state tap and every
param, in chain order; its results are one value per state/collect output, an
`i1` stop flag when `until` is set, and an `i32` status (0 = all checks passed).

`keep` is "all" (stack every step's value), "last" (only the final value; an
error if no step ran) or "final" (only the final value; the initial value if no
step ran); the last two are set by the `scan-keep-last` pass. `scan.last` takes
the last row of a stacked output (what `result[-1]` emits); `scan.final(stacked,
initial)` is the last row or `initial` when there are none (what gradients use).
`scan-keep-last` removes both when they are an output's only readers.
"""
from __future__ import annotations

from mlir import ir
from mlir._mlir_libs import _mlir
from mlir.dialects import irdl

LOOP_TYPE = "!scan.chain"

# The bindings look for a Python module of an op's dialect each time they wrap an op
# (`value.owner`, `op.operands`), under `mlir.dialects` first; a miss is not
# remembered, so every scan op a pass wrapped cost a failed import (about 60 us each,
# 0.05-0.1 s of the GRU gradient's build). This module is the scan dialect's: found
# once, then remembered.
if __package__ not in _mlir.globals.dialect_search_modules:
    _mlir.globals.append_dialect_search_prefix(__package__)

# op name -> (operands [(name, constraint, variadicity)], results, attributes)
# constraints: "loop", "tensor", "index", "any", "i32"; attributes: name -> base
_OPS = {
    "loop": ([("n_steps", "index", "single")], [("loop", "loop")],
             {"body": "#builtin.symbol_ref", "go_backwards": "#builtin.integer",
              "until": "#builtin.integer"}),
    "sequence": ([("loop", "loop", "single"), ("input", "tensor", "single")], [("next", "loop")],
                 {"taps": "#builtin.dense_array"}),
    "state": ([("loop", "loop", "single"), ("initial", "tensor", "single")], [("next", "loop")],
              {"taps": "#builtin.dense_array", "keep": "#builtin.string"}),
    "collect": ([("loop", "loop", "single"), ("dims", "index", "variadic")], [("next", "loop")],
                {"keep": "#builtin.string"}),
    "param": ([("loop", "loop", "single"), ("value", "any", "single")], [("next", "loop")], {}),
    "output": ([("loop", "loop", "single")], [("value", "tensor")], {"index": "#builtin.integer"}),
    "steps": ([("loop", "loop", "single")], [("count", "index")], {}),
    "status": ([("loop", "loop", "single")], [("bits", "i32")], {}),
    "last": ([("stacked", "tensor", "single")], [("value", "tensor")], {}),
    "final": ([("stacked", "tensor", "single"), ("initial", "tensor", "single")], [("value", "tensor")], {}),
}

OP_NAMES = tuple(f"scan.{name}" for name in _OPS)
CHAIN_OPS = ("scan.sequence", "scan.state", "scan.collect", "scan.param")


def _constraint(kind: str) -> ir.Value:
    if kind == "loop":
        return irdl.base(base_ref=ir.SymbolRefAttr.get(["scan", "chain"]))
    if kind == "tensor":
        return irdl.base(base_name="!builtin.tensor")
    if kind == "index":
        return irdl.is_(ir.TypeAttr.get(ir.IndexType.get()))
    if kind == "i32":
        return irdl.is_(ir.TypeAttr.get(ir.IntegerType.get_signless(32)))
    return irdl.any()


def build_definition() -> ir.Module:
    """The IRDL module defining the dialect (printable: `mlir-opt --irdl-file` accepts it)."""
    module = ir.Module.create()
    with ir.InsertionPoint(module.body):
        dialect = irdl.dialect("scan")
        with ir.InsertionPoint(dialect.body):
            loop_type = irdl.type_("chain")
            with ir.InsertionPoint(loop_type.body):
                irdl.parameters([], [])
            for name, (operands, results, attributes) in _OPS.items():
                op = irdl.operation_(name)
                with ir.InsertionPoint(op.body):
                    if operands:
                        values = [_constraint(kind) for _, kind, _ in operands]
                        irdl.operands_(values, [n for n, _, _ in operands],
                                       [getattr(irdl.Variadicity, v) for _, _, v in operands])
                    values = [_constraint(kind) for _, kind in results]
                    irdl.results_(values, [n for n, _ in results],
                                  [irdl.Variadicity.single] * len(results))
                    if attributes:
                        values = [irdl.base(base_name=base) for base in attributes.values()]
                        irdl.attributes_(values, list(attributes))
    module.operation.verify()
    return module


def load(context: ir.Context) -> None:
    """Register the dialect in `context` (once per context)."""
    if getattr(context, "_scanaot_scan_loaded", False):
        return
    with context, ir.Location.unknown():
        irdl.load_dialects(build_definition())
    context._scanaot_scan_loaded = True


def loop_type() -> ir.Type:
    return ir.Type.parse(LOOP_TYPE)
