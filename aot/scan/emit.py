"""Emission of a Scan node: an outlined step function plus a `scan.*` op chain."""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, func

from ..dialects.scan import loop_type
from ..emit.builders import (dim, index_const, index_max, index_min, merge_status, scalar_of, scalar_tensor,
                             tensor_type, to_index)
from ..emit.function import FunctionEmitter, describe_value
from ..graph import rules
from ..graph.basic import Apply
from ..runtime import status as st
from .op import FinalValue, ScanOp, StepsRun


def _chain(name: str, loop: ir.Value, operands=(), attributes=None) -> ir.Value:
    return ir.Operation.create(name, results=[loop_type()], operands=[loop, *operands],
                               attributes=attributes or {}).result


def _taps(taps) -> ir.Attribute:
    return ir.DenseI64ArrayAttr.get([int(t) for t in taps])


def scan_label(op) -> str:
    return f"scan {op.name!r}" if op.name else "a scan"


def emit_step_function(fe: FunctionEmitter, op) -> str:
    """Outline the step as `func.func private @..._step`; returns its symbol name."""
    arg_types = [tensor_type(v.type) for v in op.inner_inputs]
    result_types = []
    state_i = 0
    first_tap_of_state = []
    arg = sum(len(t) for t in op.seq_taps)
    for kind, taps, out in zip(op.out_kinds, op.out_taps, op.inner_outputs):
        if kind == "state":
            result_types.append(arg_types[arg])
            first_tap_of_state.append(arg)
            arg += len(taps)
            state_i += 1
        else:
            result_types.append(tensor_type(out.type))
            first_tap_of_state.append(None)
    if op.condition is not None:
        result_types.append(ir.IntegerType.get_signless(1))
    result_types.append(ir.IntegerType.get_signless(32))
    fn = fe.module.new_function(f"{op.name or 'scan'}_step", arg_types, result_types, private=True)
    body = FunctionEmitter(fe.module, fn, op.inner_inputs, context=f"{fe.context}{scan_label(op)}, in its step: ")
    body.invariant = set(op.inner_inputs[len(op.inner_inputs) - op.n_params:])
    body.per_step = True
    with ir.InsertionPoint(body.block):
        wanted = list(op.inner_outputs) + ([op.condition] if op.condition is not None else [])
        values = body.emit(wanted)
        results = []
        for value, out, tap_arg, rtype in zip(values, op.inner_outputs, first_tap_of_state, result_types):
            if tap_arg is not None:
                # a state's new value must keep the state's shape
                state = fn.entry_block.arguments[tap_arg]
                for axis in range(out.ndim):
                    same = arith.cmpi(arith.CmpIPredicate.eq, dim(value, axis), dim(state, axis))
                    body.check(same, st.STEP_SHAPE, f"output {len(results)} {describe_value(out)} keeps "
                                                    f"the shape of its state (dim {axis})")
            results.append(value if value.type == rtype else conform_to(value, rtype))
        if op.condition is not None:
            results.append(scalar_of(values[-1], "bool"))
        func.ReturnOp([*results, body.status])
    return fn.name.value


def conform_to(value: ir.Value, rtype: ir.Type) -> ir.Value:
    from mlir.dialects import tensor
    return tensor.cast(rtype, value)


@rules.emission(ScanOp)
def emit_scan(fe: FunctionEmitter, node: Apply, values):
    op = node.op
    parts = op.split_inputs(values)
    var_parts = op.split_inputs(node.inputs)
    body = emit_step_function(fe, op)
    n = to_index(parts["n_steps"], var_parts["n_steps"].dtype)
    fe.check(arith.cmpi(arith.CmpIPredicate.sge, n, index_const(0)), st.BAD_N_STEPS,
             f"{scan_label(op)}: n_steps {describe_value(var_parts['n_steps'])} >= 0")
    n = index_max(n, index_const(0))
    bound = n
    n = _bounded_by_capacity(fe, node, n)
    bool_attr = lambda b: ir.BoolAttr.get(bool(b))  # noqa: E731
    loop = ir.Operation.create("scan.loop", results=[loop_type()], operands=[n], attributes={
        "body": ir.FlatSymbolRefAttr.get(body), "go_backwards": bool_attr(op.go_backwards),
        "until": bool_attr(op.condition is not None)}).result
    for seq, taps in zip(parts["sequences"], op.seq_taps):
        loop = _chain("scan.sequence", loop, [seq], {"taps": _taps(taps)})
    inits = iter(zip(parts["initial"], var_parts["initial"]))
    dims_iter = iter(zip(parts["collect_dims"], var_parts["collect_dims"]))
    collect_i = 0
    for kind, taps in zip(op.out_kinds, op.out_taps):
        keep = {"keep": ir.StringAttr.get("all")}
        if kind == "state":
            init, init_var = next(inits)
            if taps != [-1]:
                rows = dim(init, 0)
                fe.check(arith.cmpi(arith.CmpIPredicate.sge, rows, index_const(-min(taps))),
                         st.INITIAL_TOO_SHORT, f"{scan_label(op)}: the initial state {describe_value(init_var)} "
                                               f"has the {-min(taps)} rows taps {list(taps)} need")
            loop = _chain("scan.state", loop, [init], {"taps": _taps(taps), **keep})
        else:
            rank = op.collect_ranks[collect_i]
            collect_i += 1
            sizes = []
            for _ in range(rank):
                v, var = next(dims_iter)
                size = to_index(v, var.dtype)
                sizes.append(index_max(size, index_const(0)))
            loop = _chain("scan.collect", loop, sizes, keep)
    for p in parts["params"]:
        loop = _chain("scan.param", loop, [p])
    outputs = []
    for i, var in enumerate(node.outputs):
        out = ir.Operation.create("scan.output", results=[tensor_type(var.type)], operands=[loop],
                                  attributes={"index": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), i)})
        outputs.append(out.result)
    bits = ir.Operation.create("scan.status", results=[ir.IntegerType.get_signless(32)],
                               operands=[loop]).result
    fe.status = merge_status(fe.status, _with_site(fe, bits, f"{scan_label(op)} (a check its lowering adds)"))
    if n is not bound:
        _report_full(fe, loop, n, bound)
    return outputs


def _bounded_by_capacity(fe: FunctionEmitter, node: Apply, n: ir.Value) -> ir.Value:
    """An until loop whose results the caller allocates runs at most as many steps as
    their buffers have rows (emit._record_capacities); any other loop, `n` steps."""
    rows = [fe.capacity[v] for v in node.outputs if v in fe.capacity]
    for r in rows:
        n = index_min(n, r)
    return n


def _report_full(fe: FunctionEmitter, loop: ir.Value, n: ir.Value, bound: ir.Value) -> None:
    """OUTPUT_FULL when the loop ran every step the capacity allows and the capacity is
    below n_steps: the condition may not have fired yet (if it fired on exactly that
    step, the caller's rerun is needless but gives the same result)."""
    steps = ir.Operation.create("scan.steps", results=[ir.IndexType.get()], operands=[loop]).result
    full = arith.andi(arith.cmpi(arith.CmpIPredicate.eq, steps, n), arith.cmpi(arith.CmpIPredicate.slt, n, bound))
    i32 = ir.IntegerType.get_signless(32)
    fe.status = arith.ori(fe.status, arith.select(full, arith.constant(i32, st.OUTPUT_FULL), arith.constant(i32, 0)))



def _with_site(fe: FunctionEmitter, bits: ir.Value, what: str) -> ir.Value:
    """A loop's status, with `what` as its site when no check inside recorded one
    (the lowering's own checks, such as result[-1] of zero steps, have no site)."""
    site = fe.module.site(fe.context + what)
    no_site = arith.cmpi(arith.CmpIPredicate.ult, bits, arith.constant(ir.IntegerType.get_signless(32), 1 << st.SITE_SHIFT))
    with_site = arith.ori(bits, arith.constant(ir.IntegerType.get_signless(32), site << st.SITE_SHIFT))
    failed = arith.cmpi(arith.CmpIPredicate.ne, bits, arith.constant(ir.IntegerType.get_signless(32), 0))
    return arith.select(arith.andi(failed, no_site), with_site, bits)


@rules.emission(FinalValue)
def _emit_final_value(fe, node, values):
    """`scan.final`: scan-keep-last turns it into a keep="final" output when it can."""
    out_type = tensor_type(node.outputs[0].type)
    return [ir.Operation.create("scan.final", results=[out_type], operands=values).result]


@rules.emission(StepsRun)
def _emit_steps_run(fe, node, values):
    return [scalar_tensor(arith.index_cast(ir.IntegerType.get_signless(64), dim(values[0], 0)), "int64")]


rules.vjp(StepsRun)(rules.no_gradient)
