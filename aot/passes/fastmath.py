"""fastmath: the floating-point freedoms a user allows, on every float op.

Source and target: any stage before the LLVM dialect (run on the emitted module,
so every op the later passes clone or lower keeps the flags).

Aesara computes like numpy: each float op rounds as written, so by default no
flag is set. The `fastmath` option of `scanaot.compile` / `scanaot.function`
relaxes that on request:

    "none"      exact (the default)
    "contract"  a*b+c may become one fused multiply-add (one rounding instead of
                two), what `gcc -O3 -march=native` does to C by default
    "fast"      every LLVM fast-math freedom: reassociation (sum reductions
                vectorize), no NaN/inf/signed-zero guarantees, approximate
                reciprocals and libm calls. Results change in the last bits,
                and NaN/inf inputs give unspecified results.
"""
from __future__ import annotations

from mlir import ir

MODES = ("none", "contract", "fast")
# the ops carrying arith's fast-math flags: arith's float ops and every float math op
_FLOAT_OPS = ("arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.remf", "arith.negf",
              "arith.maximumf", "arith.minimumf", "arith.maxnumf", "arith.minnumf", "arith.cmpf")
_INTEGER_MATH = ("math.absi", "math.ctlz", "math.cttz", "math.ctpop", "math.ipowi")


def check_mode(fastmath: str | bool) -> str:
    """The canonical mode name; False is "none", True is "fast"."""
    mode = ("fast" if fastmath else "none") if isinstance(fastmath, bool) else fastmath
    if mode not in MODES:
        raise ValueError(f"fastmath must be one of {', '.join(map(repr, MODES))} (or True/False), "
                         f"got {fastmath!r}")
    return mode


def set_fastmath(module_op: ir.Operation, mode: str) -> None:
    """The pass: flag every float op under `module_op` with `mode`'s freedoms."""
    if mode == "none":
        return
    flags = ir.Attribute.parse(f"#arith.fastmath<{mode}>")

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name in _FLOAT_OPS or (op.name.startswith("math.") and op.name not in _INTEGER_MATH):
            op.attributes["fastmath"] = flags
        return ir.WalkResult.ADVANCE

    module_op.walk(visit)
