"""lower-scan-to-scf: `scan.*` chains become `scf.for` (or `scf.while` with `until`).

Source: scan dialect; target: scf + tensor + arith + func.call to the step body
(the `inline` pass then inlines it).

Storage per output, all destination-passing (no allocation inside the loop):
- keep="all": one buffer of L + n rows (L initial rows for a state, 0 for a
  collect); step t reads tap k at row L + t + k and writes row L + t. A state
  with one tap instead is carried by itself (a rank-0 one in a register, others
  as a buffer the step writes in place) and each step stores it into an n-row
  buffer: with no initial rows that buffer is the scan's output as it is, which
  output-in-place then puts in the caller's buffer (no copy of the whole history
  after the loop).
- keep="last"/"final", one tap: the value itself is the loop-carried value (a scalar
  for rank-0 states, so the loop keeps it in a register).
- keep="last"/"final", L > 1 taps: a ring of L rows; tap k is row (t + L + k) mod L.
- a collected output nothing reads: not stored at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mlir import ir
from mlir.dialects import arith, bufferization, func, scf, tensor

from ..dialects.verify import collect_chain
from ..emit.builders import merge_status
from ..runtime import status as st
from .out_of_place import keep_out_of_place

DYN = ir.ShapedType.get_dynamic_size()


def _c(v: int) -> ir.Value:
    return arith.constant(ir.IndexType.get(), v)


def _dim(value: ir.Value, axis: int) -> ir.Value:
    shape = ir.RankedTensorType(value.type).shape
    return _c(shape[axis]) if shape[axis] != DYN else tensor.dim(value, _c(axis))


def _split(values):
    static, dynamic = [], []
    for v in values:
        if isinstance(v, int):
            static.append(v)
        else:
            static.append(DYN)
            dynamic.append(v)
    return static, dynamic


def _extract(source: ir.Value, offsets, sizes, result_type: ir.Type) -> ir.Value:
    s_off, d_off = _split(offsets)
    s_size, d_size = _split(sizes)
    return tensor.ExtractSliceOp(result_type, source, d_off, d_size, [], s_off, s_size,
                                 [1] * len(offsets)).result


def _insert(source: ir.Value, dest: ir.Value, offsets, sizes) -> ir.Value:
    s_off, d_off = _split(offsets)
    s_size, d_size = _split(sizes)
    return tensor.InsertSliceOp(source, dest, d_off, d_size, [], s_off, s_size, [1] * len(offsets)).result


def _static_or(value_type: ir.RankedTensorType, axis: int, dynamic: ir.Value):
    s = value_type.shape[axis]
    return s if s != DYN else dynamic


@dataclass
class Slot:
    """How one output is stored while the loop runs."""
    kind: str                      # state | collect
    keep: str                      # all | last
    taps: list[int]
    value_type: ir.RankedTensorType
    dims: list = field(default_factory=list)   # per-step value dims (index values / ints)
    rows: int = 0                  # L: initial rows kept before step 0
    mode: str = ""                 # buffer | direct | scalar | ring
    carried: int = -1              # position among loop-carried values

    @property
    def rank(self) -> int:
        return self.value_type.rank


def _row_type(slot: Slot) -> ir.RankedTensorType:
    return ir.RankedTensorType.get([1, *slot.value_type.shape], slot.value_type.element_type)


def _read_row(buf: ir.Value, row: ir.Value, slot: Slot) -> ir.Value:
    if slot.rank == 0:
        elem = tensor.extract(buf, [row])
        return tensor.from_elements(slot.value_type, [elem])
    sizes = [1] + [_static_or(slot.value_type, a, d) for a, d in enumerate(slot.dims)]
    return _extract(buf, [row] + [0] * slot.rank, sizes, slot.value_type)


def _write_row(buf: ir.Value, row: ir.Value, value: ir.Value, slot: Slot) -> ir.Value:
    if slot.rank == 0:
        return tensor.insert(tensor.extract(value, []), buf, [row])
    # never write outside the row, even if the step produced a wrongly shaped value
    # (the body has already flagged STEP_SHAPE)
    sizes = []
    for axis, expected in enumerate(slot.dims):
        static = slot.value_type.shape[axis]
        if static != DYN:
            sizes.append(static)
        else:
            sizes.append(arith.minsi(expected, _dim(value, axis)))
    if any(not isinstance(s, int) for s in sizes):
        value = _extract(value, [0] * slot.rank, sizes, slot.value_type)
    return _insert(value, buf, [row] + [0] * slot.rank, [1] + sizes)


def _buffer(rows: ir.Value, slot: Slot) -> ir.Value:
    sizes = [rows] + [_static_or(slot.value_type, a, d) for a, d in enumerate(slot.dims)]
    return tensor.empty(sizes, slot.value_type.element_type)


def lower_chain(loop_op: ir.Operation) -> None:
    chain, readers = collect_chain(loop_op)
    attrs = loop_op.attributes
    body_name = ir.FlatSymbolRefAttr(attrs["body"]).value
    until = bool(ir.BoolAttr(attrs["until"]).value)
    go_backwards = bool(ir.BoolAttr(attrs["go_backwards"]).value)
    module_op = loop_op.parent
    while module_op.name != "builtin.module":
        module_op = module_op.parent
    callee = _lookup(module_op, body_name)
    result_types = list(ir.FunctionType(ir.TypeAttr(callee.attributes["function_type"]).value).results)
    last = chain[-1]
    n = loop_op.operands[0]
    with ir.InsertionPoint(last), last.location:
        sequences, slots, params = [], [], []
        out_i = 0
        for op in chain[1:]:
            if op.name == "scan.sequence":
                sequences.append((op.operands[1], list(ir.DenseI64ArrayAttr(op.attributes["taps"]))))
            elif op.name == "scan.param":
                params.append(op.operands[1])
            else:
                vtype = ir.RankedTensorType(result_types[out_i])
                keep = ir.StringAttr(op.attributes["keep"]).value
                if op.name == "scan.state":
                    taps = list(ir.DenseI64ArrayAttr(op.attributes["taps"]))
                    slots.append(_state_slot(op.operands[1], taps, keep, vtype))
                else:
                    slots.append(Slot("collect", keep, [], vtype, dims=list(op.operands[1:])))
                out_i += 1
        n, status0 = _guard_history(n, slots)
        used = {ir.IntegerAttr(r.attributes["index"]).value for r in readers
                if r.name == "scan.output" and len(list(r.result.uses))}
        for index, slot in enumerate(slots):
            if slot.kind == "collect" and index not in used:
                slot.mode = "dead"  # nothing reads it: not stored (the step's work for it is then dead code)
        carried = [[] if s.mode == "dead" else _initial_carrier(s, n) for s in slots]
        _direct_writes_out_of_place(callee, slots, sum(len(taps) for _, taps in sequences))

        def step(t: ir.Value, values: list[ir.Value]):
            args = []
            for seq, taps in sequences:
                rows = max(0, -min(taps))
                length = _dim(seq, 0)
                rtype = ir.RankedTensorType(seq.type)
                elem_type = ir.RankedTensorType.get(rtype.shape[1:], rtype.element_type)
                for k in taps:
                    row = arith.addi(t, _c(rows + k))
                    if go_backwards:
                        row = arith.subi(arith.subi(length, _c(1)), row)
                    slot = Slot("seq", "all", [], elem_type, dims=[_dim(seq, a) for a in range(1, rtype.rank)])
                    args.append(_read_row(seq, row, slot))
            for slot, value in zip(slots, values):
                if slot.kind != "state":
                    continue
                for k in slot.taps:
                    args.append(_read_tap(slot, value, t, k))
            args.extend(params)
            call = func.CallOp(result_types, ir.FlatSymbolRefAttr.get(body_name), args)
            outs = list(call.results)
            new_values = [[] if slot.mode == "dead" else _store(slot, value, t, out)
                          for slot, value, out in zip(slots, values, outs)]
            stop = outs[len(slots)] if until else None
            return new_values, stop, outs[-1]

        # a slot may carry several values (a scalar state and its stacked buffer)
        counts = [len(c) for c in carried]

        def unflatten(values):
            out, i = [], 0
            for c in counts:
                out.append(list(values[i:i + c]))
                i += c
            return out

        def flat_step(t, values):
            new_values, stop, bits = step(t, unflatten(values))
            return [v for group in new_values for v in group], stop, bits

        flat = [v for group in carried for v in group]
        if until:
            steps, finals, bits = _while_loop(n, flat, status0, flat_step)
        else:
            steps, finals, bits = _for_loop(n, flat, status0, flat_step)
        finals = unflatten(finals)
        results = [None if slot.mode == "dead" else _final_value(slot, value, steps, exact=not until)
                   for slot, value in zip(slots, finals)]
        for reader in readers:
            if reader.name == "scan.output":
                index = ir.IntegerAttr(reader.attributes["index"]).value
                slot = slots[index]
                if slot.keep == "last" and len(list(reader.result.uses)):
                    empty_run = arith.cmpi(arith.CmpIPredicate.eq, steps, _c(0))
                    bits = arith.ori(bits, arith.select(empty_run, arith.constant(
                        ir.IntegerType.get_signless(32), st.EMPTY_LAST), arith.constant(
                        ir.IntegerType.get_signless(32), 0)))
        for reader in readers:
            if reader.name == "scan.output":
                value = results[ir.IntegerAttr(reader.attributes["index"]).value]
                if value is None:
                    continue  # a dead output's reader, unused
                if value.type != reader.result.type:
                    value = tensor.cast(reader.result.type, value)
                reader.result.replace_all_uses_with(value)
            elif reader.name == "scan.steps":
                reader.result.replace_all_uses_with(steps)
            else:
                reader.result.replace_all_uses_with(bits)
    for reader in readers:
        reader.erase()
    for op in reversed(chain):
        op.erase()


# no machine holds a loop history larger than this: n_steps beyond it is an error
MAX_HISTORY_BYTES = 1 << 46


def _guard_history(n: ir.Value, slots: list[Slot]) -> tuple[ir.Value, ir.Value]:
    """(steps to run, initial status): an n_steps whose kept history would exceed
    MAX_HISTORY_BYTES runs no step and reports BAD_N_STEPS, so the sizes of the
    history buffers can never wrap around or fail to allocate."""
    i32 = ir.IntegerType.get_signless(32)
    ok = arith.constant(ir.IntegerType.get_signless(1), 1)
    for slot in slots:
        if slot.keep != "all":
            continue
        element = slot.value_type.element_type
        row = _c(max(1, getattr(element, "width", 64) // 8))
        for axis, d in enumerate(slot.dims):
            size = _static_or(slot.value_type, axis, d)
            row = arith.muli(row, _c(size) if isinstance(size, int) else size)
        limit = arith.divui(_c(MAX_HISTORY_BYTES), arith.maxui(row, _c(1)))
        ok = arith.andi(ok, arith.cmpi(arith.CmpIPredicate.ule, n, limit))
    return (arith.select(ok, n, _c(0)),
            arith.select(ok, arith.constant(i32, 0), arith.constant(i32, st.BAD_N_STEPS)))


def _lookup(module_op: ir.Operation, name: str) -> ir.Operation:
    for op in module_op.regions[0].blocks[0].operations:
        if op.operation.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value == name:
            return op.operation
    raise ValueError(f"scan body @{name} not found")


def _state_slot(init: ir.Value, taps: list[int], keep: str, vtype: ir.RankedTensorType) -> Slot:
    block = taps != [-1]
    rows = -min(taps)
    offset = 1 if block else 0
    dims = [_dim(init, a + offset) for a in range(vtype.rank)]
    slot = Slot("state", keep, taps, vtype, dims=dims, rows=rows)
    slot.init, slot.block = init, block
    return slot


def _initial_carrier(slot: Slot, n: ir.Value) -> list[ir.Value]:
    """The loop-carried values of one output (see the module docstring for the modes)."""
    if slot.kind == "collect":
        if slot.keep == "all":
            slot.mode = "buffer"
            return [_buffer(n, slot)]
        slot.mode = "scalar" if slot.rank == 0 else "direct"
        zero = arith.constant(slot.value_type.element_type,
                              0.0 if isinstance(slot.value_type.element_type, ir.FloatType) else 0)
        if slot.rank == 0:
            return [zero]
        from mlir.dialects import linalg
        return [linalg.fill(zero, outs=[_buffer_value(slot)])]
    init = slot.init
    if slot.rows == 1:
        value = init if not slot.block else _read_row(init, _c(0), slot)
        stack = [_buffer(n, slot)] if slot.keep == "all" else []
        if slot.rank == 0:
            # the state stays in a register; with keep="all" each step stores its value
            slot.mode = "scalar+stack" if stack else "scalar"
            return [tensor.extract(value, []), *stack]
        slot.mode = "direct+stack" if stack else "direct"
        # the loop writes the carried value in place: start from a copy, since the
        # initial value may be a read-only argument
        return [bufferization.AllocTensorOp(value.type, [], copy=value).result, *stack]
    slot.mode = "buffer" if slot.keep == "all" else "ring"
    rows = _c(slot.rows) if slot.keep != "all" else arith.addi(_c(slot.rows), n)
    buf = _buffer(rows, slot)
    if slot.block:
        sizes = [slot.rows] + [_static_or(slot.value_type, a, d) for a, d in enumerate(slot.dims)]
        head_type = ir.RankedTensorType.get([slot.rows, *slot.value_type.shape], slot.value_type.element_type)
        head = _extract(init, [0] * (slot.rank + 1), sizes, head_type)
        return [_insert(head, buf, [0] * (slot.rank + 1), sizes)]
    return [_write_row(buf, _c(0), init, slot)]


def _buffer_value(slot: Slot) -> ir.Value:
    sizes = [_static_or(slot.value_type, a, d) for a, d in enumerate(slot.dims)]
    return tensor.empty(sizes, slot.value_type.element_type)


def _read_tap(slot: Slot, values: list[ir.Value], t: ir.Value, k: int) -> ir.Value:
    value = values[0]
    if slot.mode in ("scalar", "scalar+stack"):
        return tensor.from_elements(slot.value_type, [value])
    if slot.mode in ("direct", "direct+stack"):
        return value
    if slot.mode == "buffer":
        return _read_row(value, arith.addi(t, _c(slot.rows + k)), slot)
    return _read_row(value, arith.remui(arith.addi(t, _c(slot.rows + k)), _c(slot.rows)), slot)


def _direct_writes_out_of_place(body: ir.Operation, slots: list[Slot], first_state_arg: int) -> None:
    """Direct states whose new value cannot be computed in the carried buffer are
    computed apart and copied in by `_store` (passes/out_of_place.py says which)."""
    arg = first_state_arg
    for index, slot in enumerate(slots):
        if slot.kind != "state":
            continue
        if slot.mode in ("direct", "direct+stack"):
            keep_out_of_place(body, arg, index)
        arg += len(slot.taps)


def _store(slot: Slot, values: list[ir.Value], t: ir.Value, new: ir.Value) -> list[ir.Value]:
    value = values[0]
    if slot.mode == "scalar":
        return [tensor.extract(new, [])]
    if slot.mode == "scalar+stack":
        scalar = tensor.extract(new, [])
        return [scalar, tensor.insert(scalar, values[1], [t])]
    if slot.mode in ("direct", "direct+stack"):
        # write the new value into the carried buffer: with eliminate-empty-tensors the
        # step's last op computes straight into it, so no step allocates
        new = new if new.type == value.type else tensor.cast(value.type, new)
        carried = bufferization.MaterializeInDestinationOp(value.type, new, value).result
        if slot.mode == "direct":
            return [carried]
        return [carried, _write_row(values[1], t, carried, slot)]
    if slot.mode == "buffer":
        row = arith.addi(t, _c(slot.rows)) if slot.kind == "state" else t
        return [_write_row(value, row, new, slot)]
    return [_write_row(value, arith.remui(t, _c(slot.rows)), new, slot)]


def _final_value(slot: Slot, values: list[ir.Value], steps: ir.Value, exact: bool = False) -> ir.Value:
    """The output's value after the loop. `exact`: every step ran (no until), so a buffer
    without initial rows is the result as it is (and bufferization can place it in the
    caller's output buffer instead of copying it there)."""
    value = values[0]
    if slot.mode == "scalar":
        return tensor.from_elements(slot.value_type, [value])
    if slot.mode == "direct":
        return value
    if slot.mode == "ring":
        row = arith.remui(arith.addi(steps, _c(slot.rows - 1)), _c(slot.rows))
        return _read_row(value, row, slot)
    if slot.mode in ("scalar+stack", "direct+stack"):
        value = values[1]
    first = slot.rows if slot.mode == "buffer" and slot.kind == "state" else 0
    if exact and first == 0:
        return value
    sizes = [steps] + [_static_or(slot.value_type, a, d) for a, d in enumerate(slot.dims)]
    stacked = ir.RankedTensorType.get([DYN, *slot.value_type.shape], slot.value_type.element_type)
    return _extract(value, [first] + [0] * slot.rank, sizes, stacked)


def _for_loop(n, carried, status0, step):
    loop = scf.ForOp(_c(0), n, _c(1), [*carried, status0])
    with ir.InsertionPoint(loop.body):
        values = list(loop.inner_iter_args)
        new_values, _, bits = step(loop.induction_variable, values[:-1])
        scf.YieldOp([*new_values, merge_status(values[-1], bits)])
    results = list(loop.results)
    return n, results[:-1], results[-1]


def _while_loop(n, carried, status0, step):
    """scf.while carrying (tensors..., scalars..., status, t, go).

    Tensors come first: canonicalization drops unused scalar carriers from the
    condition, and one-shot bufferization matches condition operands to the
    before-region arguments by position.
    """
    i1 = ir.IntegerType.get_signless(1)
    order = sorted(range(len(carried)), key=lambda i: not isinstance(carried[i].type, ir.RankedTensorType))
    inits = [carried[i] for i in order] + [status0, _c(0), arith.constant(i1, 1)]
    types = [v.type for v in inits]
    loop = scf.WhileOp(types, inits)
    before = loop.before.blocks.append(*types)
    with ir.InsertionPoint(before):
        t, go = before.arguments[-2], before.arguments[-1]
        more = arith.andi(go, arith.cmpi(arith.CmpIPredicate.slt, t, n))
        scf.ConditionOp(more, list(before.arguments))
    after = loop.after.blocks.append(*types)
    with ir.InsertionPoint(after):
        args = list(after.arguments)
        t = args[-2]
        values = [None] * len(carried)
        for pos, i in enumerate(order):
            values[i] = args[pos]
        new_values, stop, bits = step(t, values)
        go = arith.xori(stop, arith.constant(i1, 1))
        scf.YieldOp([new_values[i] for i in order] + [merge_status(args[-3], bits), arith.addi(t, _c(1)), go])
    results = list(loop.results)
    finals = [None] * len(carried)
    for pos, i in enumerate(order):
        finals[i] = results[pos]
    return results[-2], finals, results[-3]


def ops_named(op: ir.Operation, name: str | tuple[str, ...] | None) -> list[ir.Operation]:
    """Every op called `name` (or any of the names; every op for None) under `op`, `op`
    included, in walk order (post-order: an op nested in another comes first)."""
    found = []
    names = (name,) if isinstance(name, str) else name

    def visit(o):
        if names is None or o.name in names:
            found.append(o)
        return ir.WalkResult.ADVANCE

    op.walk(visit)
    return found


def lower_scan_to_scf(op: ir.Operation, pass_=None) -> None:
    """The pass: lower every scan chain under `op` (innermost bodies first)."""
    for loop in ops_named(op, "scan.loop"):
        lower_chain(loop)
    lower_scan_last(op)


def lower_scan_last(op: ir.Operation) -> None:
    """`scan.last`/`scan.final` left by scan-keep-last (the output has other uses)."""
    for final in ops_named(op, "scan.final"):
        _lower_final(final)
    for last in ops_named(op, "scan.last"):
        with ir.InsertionPoint(last), last.location:
            stacked = last.operands[0]
            rtype = ir.RankedTensorType(last.results[0].type)
            row = arith.maxsi(arith.subi(_dim(stacked, 0), _c(1)), _c(0))
            slot = Slot("last", "all", [], rtype,
                        dims=[_dim(stacked, a + 1) for a in range(rtype.rank)])
            value = _read_row(stacked, row, slot)
        last.results[0].replace_all_uses_with(value)
        last.erase()


def _lower_final(final: ir.Operation) -> None:
    """The last row when there is one, else the initial value (scf.if: no read of an empty stack)."""
    with ir.InsertionPoint(final), final.location:
        stacked, initial = final.operands
        rtype = ir.RankedTensorType(final.results[0].type)
        rows = _dim(stacked, 0)
        has_rows = arith.cmpi(arith.CmpIPredicate.sgt, rows, _c(0))
        branch = scf.IfOp(has_rows, [rtype], has_else=True)
        with ir.InsertionPoint(branch.then_block):
            slot = Slot("final", "all", [], rtype, dims=[_dim(stacked, a + 1) for a in range(rtype.rank)])
            value = _read_row(stacked, arith.subi(rows, _c(1)), slot)
            scf.YieldOp([value if value.type == rtype else tensor.cast(rtype, value)])
        with ir.InsertionPoint(branch.else_block):
            scf.YieldOp([initial if initial.type == rtype else tensor.cast(rtype, initial)])
    final.results[0].replace_all_uses_with(branch.results[0])
    final.erase()
