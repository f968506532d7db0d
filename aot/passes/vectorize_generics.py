"""vectorize-generics (cpu): elementwise loops and outer reductions as vector loops.

Source and target: memref (after bufferization), before the lowering to LLVM.

LLVM's loop vectorizer handles every loop it is given, but with the shapes only
known at run time it emits, per loop, a vector body of 4 interleaved registers,
an epilogue, a scalar remainder and run-time overlap checks: for short rows (the
HMM's 16 states) the main body never runs. Its cost model also picks 256-bit
vectors on AVX-512 under generic tuning, and an outer reduction loads and stores
its accumulator per row. This pass writes the vector loop itself for a `linalg.generic`
whose innermost loop is parallel and contiguous in every operand that it indexes
(or absent from it: a broadcast), whose body is arith/math (and linalg.index) and
which has one output:

    for each outer parallel index:          (scalar loops)
      for j in full chunks of `lanes`:      (unmasked vector loads/stores)
        acc = out[..., j:j+lanes]
        for each reduction index: acc = body(inputs..., acc)   (acc in registers)
        out[..., j:j+lanes] = acc
      the last partial chunk, masked (a scalar loop where the CPU has no masked
      load/store for the element size)

so an outer reduction (`max(x, axis=0)`, a logsumexp over rows) keeps its
accumulator in a register instead of loading and storing it per row. Each body op
runs as written on vectors (the same arithmetic, lane by lane). `lanes` is the
CPU variant's vector width for the output's element type. Generics it does not
match are left to LLVM.
"""
from __future__ import annotations

import copy

import numpy as np
from mlir import ir
from mlir.dialects import arith, memref, scf, vector

from .ir_helpers import dims_or_constants, indexing_maps
from .lower_scan import ops_named

_BODY_PREFIXES = ("arith.", "math.")
# integer division traps on the zeros a masked chunk reads past the end: left to LLVM
_TRAPPING = {"arith.divsi", "arith.divui", "arith.remsi", "arith.remui", "arith.ceildivsi", "arith.ceildivui",
             "arith.floordivsi", "math.ipowi"}


def vectorize_generics(module_op: ir.Operation, vector_bytes: int, masked_bytes: tuple[int, ...] = ()) -> None:
    """The pass: every matching generic (and copy, fill) under `module_op` becomes vector loops.

    `masked_bytes`: the element sizes the CPU loads and stores under a mask (AVX2: 4
    and 8; AVX-512: all); for other sizes the last partial chunk is a scalar loop
    (LLVM would split a masked access into a branch per lane)."""
    for op in ops_named(module_op, tuple(_PLANNERS)):  # one walk
        plan = _PLANNERS[op.name](op, vector_bytes)
        if plan is not None:
            plan.masked_tail = all(_element_bytes(ir.MemRefType(v.type).element_type) in masked_bytes
                                   for v in op.operands if isinstance(v.type, ir.MemRefType))
            _rewrite(op, plan)


def vectorizable(op: ir.Operation) -> bool:
    """Whether the pass rewrites `op` (at any vector width)."""
    planner = _PLANNERS.get(op.name)
    return planner is not None and planner(op, 16) is not None


class _Plan:
    """What the rewrite needs of a matched op: its operands' maps (as dims_or_constants lists),
    loop kinds, lanes, and how one chunk's value is computed (`body(plan, ivs,
    mask, acc)`; the generic's body by default)."""

    def __init__(self, op, maps, kinds, lanes, body=None):
        self.op, self.maps, self.kinds, self.lanes = op, maps, kinds, lanes
        self.inner = len(kinds) - 1
        self.body = body or _body
        self.reads_out = True
        self.masked_tail = True


def _plan_copy(op: ir.Operation, vector_bytes: int) -> _Plan | None:
    """linalg.copy between contiguous buffers of one element type: a generic yielding its input."""
    source, target = op.operands
    stype, ttype = source.type.maybe_downcast(), target.type.maybe_downcast()
    if not (isinstance(stype, ir.MemRefType) and isinstance(ttype, ir.MemRefType)) or stype.rank == 0:
        return None
    if stype.element_type != ttype.element_type or not (_contiguous(stype) and _contiguous(ttype)):
        return None
    width = _element_bytes(ttype.element_type)
    if width is None:
        return None
    identity = [("dim", d) for d in range(stype.rank)]
    plan = _Plan(op, [identity, identity], ["parallel"] * stype.rank, max(vector_bytes // width, 1),
                 body=lambda plan, ivs, mask, acc: _read(plan, source, identity, ivs, mask))
    plan.reads_out = False
    return plan


def _plan_fill(op: ir.Operation, vector_bytes: int) -> _Plan | None:
    """linalg.fill of a contiguous buffer: every chunk is the value broadcast."""
    value, target = op.operands
    ttype = target.type.maybe_downcast()
    if not isinstance(ttype, ir.MemRefType) or ttype.rank == 0 or not _contiguous(ttype):
        return None
    width = _element_bytes(ttype.element_type)
    if width is None or value.type != ttype.element_type:
        return None
    identity = [("dim", d) for d in range(ttype.rank)]
    lanes = max(vector_bytes // width, 1)
    plan = _Plan(op, [[], identity], ["parallel"] * ttype.rank, lanes,
                 body=lambda plan, ivs, mask, acc: vector.BroadcastOp(
                     ir.VectorType.get([plan.lanes], value.type), value).result)
    plan.reads_out = False
    return plan


def _contiguous(mtype: ir.MemRefType) -> bool:
    """The last dim has unit stride."""
    if mtype.rank == 0:
        return False
    strides, _ = mtype.get_strides_and_offset()
    return strides[-1] == 1


def _element_bytes(t: ir.Type) -> int | None:
    t = t.maybe_downcast()
    if isinstance(t, ir.FloatType):
        return t.width // 8
    if isinstance(t, ir.IntegerType):
        return t.width // 8 if t.width in (8, 16, 32, 64) else None
    return None


def _plan(op: ir.Operation, vector_bytes: int) -> _Plan | None:
    """The plan for a generic on buffers with one output whose inner loop is parallel, else None."""
    operands = list(op.operands)
    if len(op.results) or "indexing_maps" not in op.attributes:
        return None  # on tensors, not buffers
    if list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))[1] != 1:
        return None
    kinds = [str(k) for k in ir.ArrayAttr(op.attributes["iterator_types"])]
    if not kinds or "parallel" not in kinds[-1]:
        return None
    block = op.regions[0].blocks[0]
    if "reduction" in "".join(kinds) and not len(list(block.arguments[len(block.arguments) - 1].uses)):
        return None  # a reduction that never reads its accumulator
    maps = [dims_or_constants(m) for m in indexing_maps(op)]
    if any(m is None for m in maps) or len(maps) != len(operands):
        return None
    if not (_operands_fit(operands, maps, len(kinds) - 1) and _body_fits(block)):
        return None
    out_type = ir.MemRefType(operands[-1].type)
    return _Plan(op, maps, kinds, max(vector_bytes // _element_bytes(out_type.element_type), 1))


_PLANNERS = {"linalg.generic": _plan, "linalg.copy": _plan_copy, "linalg.fill": _plan_fill}


def _operands_fit(operands: list[ir.Value], maps: list[list], inner: int) -> bool:
    """Buffers of plain numbers, each indexed by the inner loop only in its last,
    unit-stride dim (or not at all); the output indexed by it."""
    for value, amap in zip(operands, maps):
        mtype = value.type.maybe_downcast()
        if not isinstance(mtype, ir.MemRefType) or _element_bytes(mtype.element_type) is None:
            return False
        positions = [p for kind, p in amap if kind == "dim"]
        if inner in positions and (positions.count(inner) > 1 or amap[-1] != ("dim", inner)
                                   or not _contiguous(mtype)):
            return False
    return bool(maps[-1]) and maps[-1][-1] == ("dim", inner)


def _body_fits(block: ir.Block) -> bool:
    """arith/math ops (no trapping integer division) on numbers, booleans and indices."""
    for body_op in block.operations:
        name = body_op.operation.name
        if name == "linalg.yield":
            continue
        if len(body_op.operation.regions) or name in _TRAPPING:
            return False
        if not (name.startswith(_BODY_PREFIXES) or name == "linalg.index"):
            return False
        for result in body_op.operation.results:
            if _element_bytes(result.type) is None and not _is_bool_or_index(result.type):
                return False
    return True


def _is_bool_or_index(t: ir.Type) -> bool:
    t = t.maybe_downcast()
    return isinstance(t, ir.IndexType) or (isinstance(t, ir.IntegerType) and t.width == 1)


def _index(v: int) -> ir.Value:
    return arith.constant(ir.IndexType.get(), v)


def _loop_sizes(plan: _Plan) -> list[ir.Value]:
    """Each loop's trip count, from the first operand indexing it."""
    sizes: list[ir.Value | None] = [None] * len(plan.kinds)
    for value, amap in zip(plan.op.operands, plan.maps):
        for axis, (kind, p) in enumerate(amap):
            if kind == "dim" and sizes[p] is None:
                sizes[p] = memref.dim(value, _index(axis))
    return sizes


def _rewrite(op: ir.Operation, plan: _Plan) -> None:
    with ir.InsertionPoint(op), op.location:
        sizes = _loop_sizes(plan)
        if any(s is None for s in sizes):
            return
        outer = [d for d in range(plan.inner) if "parallel" in plan.kinds[d]]
        reductions = [d for d in range(plan.inner) if "parallel" not in plan.kinds[d]]
        _nest(plan, sizes, outer, reductions, {})
    op.erase()


def _nest(plan: _Plan, sizes: list, outer: list[int], reductions: list[int], ivs: dict) -> None:
    """The scalar loops over the outer parallel dims, then the chunks of the inner dim."""
    if outer:
        d, rest = outer[0], outer[1:]
        loop = scf.ForOp(_index(0), sizes[d], _index(1))
        with ir.InsertionPoint(loop.body):
            _nest(plan, sizes, rest, reductions, {**ivs, d: loop.induction_variable})
            scf.YieldOp([])
        return
    lanes, n = plan.lanes, sizes[plan.inner]
    full = arith.muli(arith.divui(n, _index(lanes)), _index(lanes))
    chunks = scf.ForOp(_index(0), full, _index(lanes))
    with ir.InsertionPoint(chunks.body):
        _chunk(plan, sizes, reductions, {**ivs, plan.inner: chunks.induction_variable}, None)
        scf.YieldOp([])
    if not plan.masked_tail:
        scalar = copy.copy(plan)
        scalar.lanes = 1
        rest = scf.ForOp(full, n, _index(1))
        with ir.InsertionPoint(rest.body):
            _chunk(scalar, sizes, reductions, {**ivs, plan.inner: rest.induction_variable}, None)
            scf.YieldOp([])
        return
    tail = arith.cmpi(arith.CmpIPredicate.ult, full, n)
    branch = scf.IfOp(tail)
    with ir.InsertionPoint(branch.then_block):
        mask_type = ir.VectorType.get([lanes], ir.IntegerType.get_signless(1))
        mask = vector.CreateMaskOp(mask_type, [arith.subi(n, full)]).result
        _chunk(plan, sizes, reductions, {**ivs, plan.inner: full}, mask)
        scf.YieldOp([])


def _in_bounds() -> ir.ArrayAttr:
    """Every transfer is in bounds: a full chunk lies inside the loop's extent, and a
    tail's mask already stops at its end (in_bounds=false would make the lowering AND
    a second mask of the same bound into every masked access: LLVM IR to compile and
    then remove)."""
    return ir.ArrayAttr.get([ir.BoolAttr.get(True)])


def _indices(amap: list, ivs: dict) -> list[ir.Value]:
    return [ivs[p] if kind == "dim" else _index(p) for kind, p in amap]


def _read(plan: _Plan, value: ir.Value, amap: list, ivs: dict, mask) -> ir.Value:
    """The operand's lanes at the current chunk (a broadcast if the inner dim is absent)."""
    elem = ir.MemRefType(value.type).element_type
    vtype = ir.VectorType.get([plan.lanes], elem)
    indices = _indices(amap, ivs)
    if amap and amap[-1] == ("dim", plan.inner):
        pad = arith.constant(elem, 0.0 if _is_float(elem) else 0)
        minor = ir.AffineMapAttr.get(ir.AffineMap.get_minor_identity(len(amap), 1))
        return vector.TransferReadOp(vtype, value, indices, minor, pad, _in_bounds(), mask=mask).result
    return vector.BroadcastOp(vtype, memref.load(value, indices)).result


def _is_float(t: ir.Type) -> bool:
    return isinstance(t.maybe_downcast(), ir.FloatType)


def _chunk(plan: _Plan, sizes: list, reductions: list[int], ivs: dict, mask) -> None:
    """One chunk of the inner dim: reads, the reduction loops (accumulator in a
    register), the body, the write."""
    op = plan.op
    operands = list(op.operands)
    out, out_map = operands[-1], plan.maps[-1]
    acc = _read(plan, out, out_map, ivs, mask) if plan.reads_out and _reads_out(op) else None
    result = _reduce(plan, sizes, reductions, ivs, mask, acc)
    indices = _indices(out_map, ivs)
    minor = ir.AffineMapAttr.get(ir.AffineMap.get_minor_identity(len(out_map), 1))
    vector.TransferWriteOp(None, result, out, indices, minor, _in_bounds(), mask=mask)


def _reads_out(op: ir.Operation) -> bool:
    block = op.regions[0].blocks[0]
    return bool(len(list(block.arguments[len(block.arguments) - 1].uses)))


def _reduce(plan: _Plan, sizes: list, reductions: list[int], ivs: dict, mask, acc):
    if not reductions:
        return plan.body(plan, ivs, mask, acc)
    d, rest = reductions[0], reductions[1:]
    loop = scf.ForOp(_index(0), sizes[d], _index(1), [acc] if acc is not None else [])
    with ir.InsertionPoint(loop.body):
        inner_acc = loop.inner_iter_args[0] if acc is not None else None
        value = _reduce(plan, sizes, rest, {**ivs, d: loop.induction_variable}, mask, inner_acc)
        scf.YieldOp([value])
    return loop.results[0]


def _body(plan: _Plan, ivs: dict, mask, acc) -> ir.Value:
    """The generic's body on vectors of `lanes` elements."""
    op = plan.op
    block = op.regions[0].blocks[0]
    args = list(block.arguments)
    values: dict[int, ir.Value] = {}
    for arg, value, amap in zip(args[:-1], list(op.operands)[:-1], plan.maps[:-1]):
        values[hash(arg)] = _read(plan, value, amap, ivs, mask)
    if acc is not None:
        values[hash(args[-1])] = acc
    splats: dict[int, ir.Value] = {}

    def operand(v: ir.Value) -> ir.Value:
        if hash(v) in values:
            return values[hash(v)]
        if hash(v) not in splats:  # defined above the generic: the same in every lane
            splats[hash(v)] = vector.BroadcastOp(ir.VectorType.get([plan.lanes], v.type), v).result
        return splats[hash(v)]

    for body_op in block.operations:
        inner = body_op.operation
        if inner.name == "linalg.yield":
            return operand(inner.operands[0])
        if inner.name == "linalg.index":
            values[hash(inner.results[0])] = _index_vector(plan, ivs, ir.IntegerAttr(inner.attributes["dim"]).value)
            continue
        if inner.name == "arith.constant":
            clone = inner.clone()
            values[hash(inner.results[0])] = vector.BroadcastOp(
                ir.VectorType.get([plan.lanes], clone.results[0].type), clone.results[0]).result
            continue
        created = ir.Operation.create(
            inner.name, results=[ir.VectorType.get([plan.lanes], r.type) for r in inner.results],
            operands=[operand(v) for v in inner.operands],
            attributes={name: inner.attributes[name] for name in inner.attributes})
        for old, new in zip(inner.results, created.results):
            values[hash(old)] = new
    raise ValueError("linalg.generic body without linalg.yield")


def _index_vector(plan: _Plan, ivs: dict, d: int) -> ir.Value:
    vtype = ir.VectorType.get([plan.lanes], ir.IndexType.get())
    base = vector.BroadcastOp(vtype, ivs[d]).result
    if d != plan.inner:
        return base
    steps = arith.constant(vtype, ir.DenseElementsAttr.get(np.arange(plan.lanes, dtype="int64"), type=vtype))
    return arith.addi(base, steps)
