"""scan-interchange: an elementwise scan runs chunk by chunk, each chunk's state in registers.

Source: scan dialect; target: scf + vector + tensor for the chains it matches
(the others are left to lower-scan-to-scf).

A scan whose states are elementwise and independent per element (`A**k`:
s_t = s_{t-1} * A) is one scalar recurrence per element. Run as written, every
step streams the whole state through memory. Interchanged, the outer loop walks
chunks of `lanes` elements and the inner loop runs every step on one chunk held
in vector registers: memory is touched once per chunk, and the chunk holds
enough independent vectors to cover the multiply's latency.

Matched: no sequences, no collects, no until; states with the single tap -1
whose value is read only after the loop (keep last/final, set by
scan-keep-last); rank-0 or same-rank params; a step body made of elementwise
`linalg.generic`s (identity or rank-0 indexing maps, all loops parallel),
fills, splat constants and scalar arithmetic. Every scalar op of the body runs
as written on vectors of lanes, so results are bit-identical.

The body's checks depend only on dims: they are evaluated once, outside the
loops, on the full tensors' dims (the same status bits as the step loop, counted
when at least one step runs). Each operand is read and written under a mask of
its own length, so mismatched shapes (already flagged) stay memory-safe.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from mlir import ir
from mlir.dialects import arith, scf, tensor, vector

from ..dialects.verify import collect_chain
from ..runtime import status as st
from .ir_helpers import clone_mapped, pointwise_generic
from .lower_scan import DYN, _c, _lookup, ops_named

# vector registers per state: a multiply's latency times the ports that issue it
UNROLL = 8
_SCALAR_DIALECTS = ("arith.", "math.")
_PASS_THROUGH = ("tensor.cast",)
# on the chunk loop, so the IR shows which scans were interchanged
MARK = "scan.interchanged"


@dataclass
class _Plan:
    loop: ir.Operation
    chain: list
    readers: list
    body: ir.Operation           # the step func.func
    states: list                 # scan.state ops
    params: list                 # scan.param ops
    rank: int
    shape_ops: set               # body ops evaluated once, on dims only


def _rank(value: ir.Value) -> int:
    return ir.RankedTensorType(value.type).rank if isinstance(value.type, ir.RankedTensorType) else -1


def _elementwise_generic(op: ir.Operation, rank: int) -> bool:
    """Pointwise, rank-`rank` (or rank-0) loops, each map identity or rank-0."""
    if not pointwise_generic(op):
        return False
    loops = len(ir.ArrayAttr(op.attributes["iterator_types"]))
    if loops != _rank(op.results[0]) or loops not in (0, rank):
        return False
    identity = ir.AffineMap.get_identity(loops)
    return all(ir.AffineMapAttr(attr).value == identity or len(ir.AffineMapAttr(attr).value.results) == 0
               for attr in ir.ArrayAttr(op.attributes["indexing_maps"]))


def _match(loop: ir.Operation) -> _Plan | None:
    if ir.BoolAttr(loop.attributes["until"]).value:
        return None
    chain, readers = collect_chain(loop)
    states = [o for o in chain if o.name == "scan.state"]
    params = [o for o in chain if o.name == "scan.param"]
    if len(states) + len(params) + 1 != len(chain) or not states:
        return None
    if any(list(ir.DenseI64ArrayAttr(s.attributes["taps"])) != [-1]
           or ir.StringAttr(s.attributes["keep"]).value == "all" for s in states):
        return None
    rank = _rank(states[0].operands[1])
    if rank < 1 or any(_rank(s.operands[1]) != rank for s in states):
        return None
    if any(_rank(p.operands[1]) not in (0, rank) for p in params):
        return None
    module_op = loop.parent
    while module_op.name != "builtin.module":
        module_op = module_op.parent
    body = _lookup(module_op, ir.FlatSymbolRefAttr(loop.attributes["body"]).value)
    if len(body.regions[0].blocks) != 1:
        return None
    shape_ops = _classify(body.regions[0].blocks[0], rank)
    if shape_ops is None:
        return None
    return _Plan(loop, chain, readers, body, states, params, rank, shape_ops)


def _classify(block: ir.Block, rank: int) -> set | None:
    """The ops computing on dims only, or None when some op is not elementwise."""
    shape_values: set = set()   # hashes of values derived from dims and constants only
    shape_ops = set()

    def is_shape(v: ir.Value) -> bool:
        return hash(v) in shape_values

    for op in block.operations:
        op = op.operation
        name = op.name
        if name == "func.return":
            status = op.operands[len(op.operands) - 1]
            if not is_shape(status):
                return None
            continue
        if name == "tensor.dim":
            axis = op.operands[1].owner
            if getattr(axis, "name", "") != "arith.constant":
                return None
        elif name == "linalg.generic":
            if not _elementwise_generic(op, rank):
                return None
            continue
        elif name in ("linalg.fill", "tensor.extract", "tensor.from_elements", *_PASS_THROUGH):
            if name == "tensor.extract" and _rank(op.operands[0]) != 0:
                return None
            continue
        elif name == "tensor.empty":
            if not all(is_shape(v) for v in op.operands) or _rank(op.results[0]) not in (0, rank):
                return None
            continue
        elif name == "arith.constant" and isinstance(op.results[0].type, ir.RankedTensorType):
            if not ir.DenseElementsAttr(op.attributes["value"]).is_splat or _rank(op.results[0]) not in (0, rank):
                return None
            continue
        elif not name.startswith(_SCALAR_DIALECTS) or any(isinstance(r.type, ir.ShapedType) for r in op.results):
            return None
        if all(is_shape(v) for v in op.operands) or name == "tensor.dim":
            shape_ops.add(op)
            shape_values.update(hash(r) for r in op.results)
    return shape_ops


def interchangeable(op: ir.Operation) -> bool:
    """Whether scan-interchange would rewrite a loop under `op` (its chunks are as wide as
    the CPU variant's vectors: the variants' front ends differ only then)."""
    return any(_match(loop) is not None for loop in ops_named(op, "scan.loop"))


def scan_interchange(op: ir.Operation, vector_bytes: int) -> None:
    """The pass: interchange every matched chain under `op`; `vector_bytes` is the
    width of one vector register of the CPU compiled for."""
    for loop in ops_named(op, "scan.loop"):
        plan = _match(loop)
        if plan is not None:
            _rewrite(plan, vector_bytes)


def _flatten(value: ir.Value, rank: int) -> ir.Value:
    if rank <= 1:
        return value
    rtype = ir.RankedTensorType(value.type)
    size = DYN if DYN in rtype.shape else math.prod(rtype.shape)
    flat = ir.RankedTensorType.get([size], rtype.element_type)
    return tensor.CollapseShapeOp(flat, value, _all_axes(rank)).result


def _unflatten(flat: ir.Value, rtype: ir.RankedTensorType, dims: list[ir.Value]) -> ir.Value:
    if rtype.rank <= 1:
        return flat
    # tensor.reshape, not expand_shape: expand-strided-metadata takes one dynamic
    # size per group, and every dim of a state may be dynamic
    shape = tensor.from_elements(ir.RankedTensorType.get([rtype.rank], ir.IndexType.get()), dims)
    return tensor.reshape(rtype, flat, shape)


def _all_axes(rank: int) -> ir.ArrayAttr:
    """The reassociation grouping every axis into one."""
    i64 = ir.IntegerType.get_signless(64)
    return ir.ArrayAttr.get([ir.ArrayAttr.get([ir.IntegerAttr.get(i64, a) for a in range(rank)])])


def _dims(value: ir.Value) -> list[ir.Value]:
    rtype = ir.RankedTensorType(value.type)
    return [_c(s) if s != DYN else tensor.dim(value, _c(a)) for a, s in enumerate(rtype.shape)]


def _rewrite(plan: _Plan, vector_bytes: int) -> None:
    last = plan.chain[-1]
    block = plan.body.regions[0].blocks[0]
    args = list(block.arguments)
    inputs = [s.operands[1] for s in plan.states] + [p.operands[1] for p in plan.params]
    n = plan.loop.operands[0]
    i32 = ir.IntegerType.get_signless(32)
    elem = ir.RankedTensorType(inputs[0].type).element_type
    elem_bytes = max(1, (elem.width if hasattr(elem, "width") else 32) // 8)
    lanes = max(1, vector_bytes // elem_bytes) * UNROLL
    with ir.InsertionPoint(last), last.location:
        dims = {hash(a): _dims(v) for a, v in zip(args, inputs)}
        status, outer = _evaluate_checks(block, plan.shape_ops, dims)
        ran = arith.cmpi(arith.CmpIPredicate.sgt, n, _c(0))
        status = arith.select(ran, status, arith.constant(i32, 0))
        flats = [_flatten(v, plan.rank) if _rank(v) else v for v in inputs]
        lengths = [tensor.dim(f, _c(0)) if _rank(f) else None for f in flats]
        total = lengths[0]
        for length in lengths[1:]:
            total = arith.maxui(total, length) if length is not None else total
        scalars = {hash(a): tensor.extract(v, []) for a, v in zip(args, inputs) if _rank(v) == 0}
        outs = [tensor.empty([lengths[i]], ir.RankedTensorType(flats[i].type).element_type)
                for i in range(len(plan.states))]
        chunks = scf.ForOp(_c(0), total, _c(lanes), outs)
        chunks.operation.attributes[MARK] = ir.UnitAttr.get()
        with ir.InsertionPoint(chunks.body):
            c = chunks.induction_variable
            values = {**outer, **scalars}
            reads = []
            for arg, flat, length in zip(args, flats, lengths):
                if _rank(flat) == 0:
                    continue
                mask = _mask(lanes, arith.subi(length, c))
                vtype = ir.VectorType.get([lanes], ir.RankedTensorType(flat.type).element_type)
                pad = arith.constant(vtype.element_type, 0.0 if isinstance(vtype.element_type, ir.FloatType) else 0)
                read = vector.TransferReadOp(vtype, flat, [c], _identity1(), pad, _out_of_bounds(), mask=mask).result
                values[hash(arg)] = read
                reads.append(read)
            steps = scf.ForOp(_c(0), n, _c(1), reads[:len(plan.states)])
            with ir.InsertionPoint(steps.body):
                for arg, carried in zip(args, steps.inner_iter_args):
                    values[hash(arg)] = carried
                new = _step_on_lanes(block, plan.shape_ops, values, lanes)
                scf.YieldOp(new)
            written = []
            for final, out, length in zip(steps.results, chunks.inner_iter_args, lengths):
                written.append(vector.TransferWriteOp(out.type, final, out, [c], _identity1(), _out_of_bounds(),
                                                      mask=_mask(lanes, arith.subi(length, c))).result)
            scf.YieldOp(written)
        results = [_unflatten(r, ir.RankedTensorType(s.operands[1].type), dims[hash(a)])
                   for r, s, a in zip(chunks.results, plan.states, args)]
        for reader in plan.readers:
            if reader.name == "scan.output":
                index = ir.IntegerAttr(reader.attributes["index"]).value
                value = results[index]
                keep = ir.StringAttr(plan.states[index].attributes["keep"]).value
                if keep == "last" and len(list(reader.result.uses)):
                    empty = arith.select(ran, arith.constant(i32, 0), arith.constant(i32, st.EMPTY_LAST))
                    status = arith.ori(status, empty)
                if value.type != reader.result.type:
                    value = tensor.cast(reader.result.type, value)
                reader.result.replace_all_uses_with(value)
        for reader in plan.readers:
            if reader.name == "scan.steps":
                reader.result.replace_all_uses_with(n)
            elif reader.name == "scan.status":
                reader.result.replace_all_uses_with(status)
    for reader in plan.readers:
        reader.erase()
    for op in reversed(plan.chain):
        op.erase()


def _identity1() -> ir.AffineMapAttr:
    return ir.AffineMapAttr.get(ir.AffineMap.get_identity(1))


def _out_of_bounds() -> ir.ArrayAttr:
    return ir.ArrayAttr.get([ir.BoolAttr.get(False)])


def _mask(lanes: int, remaining: ir.Value) -> ir.Value:
    """The first `remaining` lanes (none when it is negative)."""
    return vector.CreateMaskOp(ir.VectorType.get([lanes], ir.IntegerType.get_signless(1)), [remaining]).result


def _evaluate_checks(block: ir.Block, shape_ops: set, dims: dict) -> tuple[ir.Value, dict]:
    """Clone the body's dim-only ops here (tensor.dim reads the full operands' dims);
    returns the body's status bits and the map from body values to their clones."""
    mapping: dict = {}

    def lookup(v: ir.Value) -> ir.Value:
        return mapping.get(hash(v), v)

    for op in block.operations:
        op = op.operation
        name = op.name
        if name == "tensor.dim":
            axis = ir.IntegerAttr(op.operands[1].owner.attributes["value"]).value
            mapping[hash(op.results[0])] = dims[hash(op.operands[0])][axis]
        elif op in shape_ops:
            clone_mapped(op, mapping)
        elif name == "tensor.empty":
            rtype = ir.RankedTensorType(op.results[0].type)
            dynamic = iter(op.operands)
            dims[hash(op.results[0])] = [_c(s) if s != DYN else lookup(next(dynamic)) for s in rtype.shape]
        elif name in ("linalg.generic", "linalg.fill"):
            dims[hash(op.results[0])] = dims[hash(op.operands[len(op.operands) - 1])]
        elif name in _PASS_THROUGH:
            source = dims[hash(op.operands[0])]
            rtype = ir.RankedTensorType(op.results[0].type)
            dims[hash(op.results[0])] = [_c(s) if s != DYN else d for s, d in zip(rtype.shape, source)]
        elif name in ("arith.constant", "tensor.from_elements") and isinstance(op.results[0].type, ir.RankedTensorType):
            dims[hash(op.results[0])] = [_c(s) for s in ir.RankedTensorType(op.results[0].type).shape]
        elif name == "func.return":
            return lookup(op.operands[len(op.operands) - 1]), mapping
    raise AssertionError("step body without func.return")  # pragma: no cover - verified earlier


def _step_on_lanes(block: ir.Block, shape_ops: set, values: dict, lanes: int) -> list[ir.Value]:
    """One step on a chunk: every value is a vector of `lanes` or a uniform scalar."""
    def lookup(v: ir.Value) -> ir.Value:
        return values.get(hash(v), v)

    for op in block.operations:
        op = op.operation
        name = op.name
        if op in shape_ops or name == "tensor.empty":
            continue
        if name == "func.return":
            states = list(op.operands)[:-1]
            return [_broadcast(lookup(v), lanes) for v in states]
        if name == "linalg.generic":
            region = op.regions[0].blocks[0]
            inner = dict(values)
            n_in = len(region.arguments) - 1
            for block_arg, operand in zip(list(region.arguments)[:n_in], list(op.operands)[:n_in]):
                inner[hash(block_arg)] = lookup(operand)
            for region_op in region.operations:
                region_op = region_op.operation
                if region_op.name == "linalg.yield":
                    values[hash(op.results[0])] = inner.get(hash(region_op.operands[0]), region_op.operands[0])
                    break
                _clone_lanewise(region_op, inner, lanes)
        elif name == "linalg.fill":
            values[hash(op.results[0])] = lookup(op.operands[0])
        elif name == "arith.constant" and isinstance(op.results[0].type, ir.RankedTensorType):
            splat = ir.DenseElementsAttr(op.attributes["value"]).get_splat_value()
            values[hash(op.results[0])] = arith.ConstantOp(splat.type, splat).result
        elif name in ("tensor.extract", "tensor.from_elements", *_PASS_THROUGH):
            values[hash(op.results[0])] = lookup(op.operands[0])
        else:
            _clone_lanewise(op, values, lanes)
    raise AssertionError("step body without func.return")  # pragma: no cover


def _broadcast(value: ir.Value, lanes: int) -> ir.Value:
    if isinstance(value.type, ir.VectorType):
        return value
    return vector.BroadcastOp(ir.VectorType.get([lanes], value.type), value).result


def _clone_lanewise(op: ir.Operation, values: dict, lanes: int) -> None:
    """`op` on vectors when any operand is one (scalars broadcast), else as written."""
    operands = [values.get(hash(v), v) for v in op.operands]
    if not any(isinstance(v.type, ir.VectorType) for v in operands):
        clone_mapped(op, values)
        return
    clone = ir.Operation.create(
        op.name, results=[ir.VectorType.get([lanes], r.type) for r in op.results],
        operands=[_broadcast(v, lanes) for v in operands],
        attributes={name: op.attributes[name] for name in op.attributes})
    for old, new in zip(op.results, clone.results):
        values[hash(old)] = new
