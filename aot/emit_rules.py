"""Emission rules: one function per op class, from graph node to MLIR values.

A rule gets the function emitter, the node and its input values, and returns one
value per output. A missing rule is an error naming the op.
"""
from __future__ import annotations

from typing import Callable

from mlir import ir
from mlir.dialects import arith, linalg, math, tensor

from .runtime import status as st
from . import ops
from .emit import (DYN, FunctionEmitter, _fold_index, cast_scalar, compute_type, dim, dims, element_type, empty,
                   fill, generic, index_const, index_max, index_min, load_scalar, scalar_of,
                   scalar_tensor, store_scalar, tensor_type, to_index)
from .graph import Apply

RULES: dict[type, Callable] = {}


class UnsupportedOpError(TypeError):
    """An op (or scalar function) the emitter has no rule for."""


def rule(op_class: type):
    def register(fn):
        RULES[op_class] = fn
        return fn
    return register


def rule_for(op) -> Callable:
    try:
        return RULES[type(op)]
    except KeyError:
        raise UnsupportedOpError(f"no emission rule for op {op} ({type(op).__name__}): scanaot cannot "
                                 "compile it; express it with the ops listed in docs/tensor.md") from None


# ---------------------------------------------------------------- scalar functions
def _float_const(t: ir.Type, value: float) -> ir.Value:
    return arith.constant(t, value)


def scalar_op(name: str, args: list[ir.Value], dtype: str) -> ir.Value:
    """One scalar op on arguments already converted to `dtype` (compute types)."""
    is_float = dtype.startswith("float")
    t = compute_type(dtype)
    a = args[0]
    b = args[1] if len(args) > 1 else None
    if name == "add":
        return arith.addf(a, b) if is_float else (arith.xori(a, b) if dtype == "bool" else arith.addi(a, b))
    if name == "sub":
        return arith.subf(a, b) if is_float else arith.subi(a, b)
    if name == "mul":
        return arith.mulf(a, b) if is_float else (arith.andi(a, b) if dtype == "bool" else arith.muli(a, b))
    if name == "true_div":
        return arith.divf(a, b)
    if name == "int_div":
        return math.floor(arith.divf(a, b)) if is_float else arith.floordivsi(a, b)
    if name == "mod":
        r = arith.remf(a, b) if is_float else arith.remsi(a, b)
        zero = arith.constant(t, 0.0 if is_float else 0)
        if is_float:
            nonzero = arith.cmpf(arith.CmpFPredicate.UNE, r, zero)
            sign_differs = arith.xori(arith.cmpf(arith.CmpFPredicate.OLT, r, zero),
                                      arith.cmpf(arith.CmpFPredicate.OLT, b, zero))
            return arith.select(arith.andi(nonzero, sign_differs), arith.addf(r, b), r)
        nonzero = arith.cmpi(arith.CmpIPredicate.ne, r, zero)
        sign_differs = arith.xori(arith.cmpi(arith.CmpIPredicate.slt, r, zero),
                                  arith.cmpi(arith.CmpIPredicate.slt, b, zero))
        return arith.select(arith.andi(nonzero, sign_differs), arith.addi(r, b), r)
    if name == "pow":
        return math.powf(a, b) if is_float else math.ipowi(a, b)
    if name == "maximum":
        return arith.maximumf(a, b) if is_float else arith.maxsi(a, b)
    if name == "minimum":
        return arith.minimumf(a, b) if is_float else arith.minsi(a, b)
    if name in ("lt", "gt", "le", "ge", "eq", "neq"):
        if is_float:
            pred = {"lt": "OLT", "gt": "OGT", "le": "OLE", "ge": "OGE", "eq": "OEQ", "neq": "UNE"}[name]
            return arith.cmpf(getattr(arith.CmpFPredicate, pred), a, b)
        pred = {"lt": "slt", "gt": "sgt", "le": "sle", "ge": "sge", "eq": "eq", "neq": "ne"}[name]
        if dtype == "bool":
            pred = {"slt": "ult", "sgt": "ugt", "sle": "ule", "sge": "uge"}.get(pred, pred)
        return arith.cmpi(getattr(arith.CmpIPredicate, pred), a, b)
    if name == "and":
        return arith.andi(a, b)
    if name == "or":
        return arith.ori(a, b)
    if name == "xor":
        return arith.xori(a, b)
    if name == "invert":
        return arith.xori(a, arith.constant(t, 1 if dtype == "bool" else -1))
    if name == "neg":
        return arith.negf(a) if is_float else arith.subi(arith.constant(t, 0), a)
    if name == "abs":
        return math.absf(a) if is_float else math.absi(a)
    if name == "sign":
        if is_float:
            zero = _float_const(t, 0.0)
            pos = arith.uitofp(t, arith.cmpf(arith.CmpFPredicate.OGT, a, zero))
            neg = arith.uitofp(t, arith.cmpf(arith.CmpFPredicate.OLT, a, zero))
            return arith.subf(pos, neg)
        zero = arith.constant(t, 0)
        pos = arith.extui(t, arith.cmpi(arith.CmpIPredicate.sgt, a, zero))
        neg = arith.extui(t, arith.cmpi(arith.CmpIPredicate.slt, a, zero))
        return arith.subi(pos, neg)
    if name == "sigmoid":
        one = _float_const(t, 1.0)
        return arith.divf(one, arith.addf(one, math.exp(arith.negf(a))))
    if name == "tanh" and dtype == "float32":
        return tanh_f32(a)
    if name in ("tanh", "exp", "log", "sqrt", "sin", "cos", "ceil", "floor"):
        return getattr(math, name)(a)
    raise UnsupportedOpError(f"no emission for the scalar function {name}")


# XLA's float32 tanh: a rational approximation within a few ulp, vectorizable
# (libm's tanhf is a call per element)
_TANH_CLAMP = 7.90531110763549805
_TANH_P = [-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
           1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03]
_TANH_Q = [1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03]


def tanh_f32(x: ir.Value) -> ir.Value:
    t = x.type
    c = lambda v: arith.constant(t, v)  # noqa: E731
    x = arith.maximumf(arith.minimumf(x, c(_TANH_CLAMP)), c(-_TANH_CLAMP))
    x2 = arith.mulf(x, x)
    p = c(_TANH_P[0])
    for coefficient in _TANH_P[1:]:
        p = arith.addf(arith.mulf(x2, p), c(coefficient))
    p = arith.mulf(x, p)
    q = c(_TANH_Q[0])
    for coefficient in _TANH_Q[1:]:
        q = arith.addf(arith.mulf(x2, q), c(coefficient))
    return arith.divf(p, q)


# ---------------------------------------------------------------- elementwise machinery
def broadcast_dims(fe: FunctionEmitter, values, types, out_type) -> list[ir.Value]:
    """Output dims of a broadcast; mismatched dims set SHAPE_MISMATCH and use the smallest."""
    out = []
    for axis in range(out_type.ndim):
        if out_type.broadcastable[axis]:
            out.append(index_const(1))
            continue
        candidates = []
        for v, t in zip(values, types):
            offset = axis - (out_type.ndim - t.ndim)
            if offset >= 0 and not t.broadcastable[offset]:
                candidates.append(dim(v, offset))
        size = candidates[0]
        for other in candidates[1:]:
            fe.check(arith.cmpi(arith.CmpIPredicate.eq, size, other), st.SHAPE_MISMATCH)
            size = index_min(size, other)
        out.append(size)
    return out


def input_map(t, out_ndim: int) -> ir.AffineMap:
    exprs = []
    for axis in range(t.ndim):
        if t.broadcastable[axis]:
            exprs.append(ir.AffineConstantExpr.get(0))
        else:
            exprs.append(ir.AffineDimExpr.get(axis + out_ndim - t.ndim))
    return ir.AffineMap.get(out_ndim, 0, exprs)


def elementwise(fe: FunctionEmitter, values, types, out_type, body) -> ir.Value:
    """Apply `body(list of compute-type scalars) -> compute-type scalar` with broadcasting."""
    in_dtypes = [t.dtype for t in types]
    if out_type.ndim == 0:
        scalars = [scalar_of(v, d) for v, d in zip(values, in_dtypes)]
        return scalar_tensor(body(scalars), out_type.dtype)
    sizes = broadcast_dims(fe, values, types, out_type)
    init = empty(sizes, out_type)
    maps = [input_map(t, out_type.ndim) for t in types]
    maps.append(ir.AffineMap.get_identity(out_type.ndim))

    def block(args):
        scalars = [load_scalar(a, d) for a, d in zip(args, in_dtypes)]
        return store_scalar(body(scalars), out_type.dtype)

    return generic(values, init, maps, ["parallel"] * out_type.ndim, block)


@rule(ops.Elemwise)
def _elemwise(fe: FunctionEmitter, node: Apply, values):
    op = node.op
    types = [v.type for v in node.inputs]
    compute = op.compute_dtype([t.dtype for t in types])
    out_type = node.outputs[0].type

    def body(scalars):
        if op.scalar == "switch":
            cond = scalars[0]
            a = cast_scalar(scalars[1], types[1].dtype, compute)
            b = cast_scalar(scalars[2], types[2].dtype, compute)
            return arith.select(cond, a, b)
        converted = [cast_scalar(s, t.dtype, compute) for s, t in zip(scalars, types)]
        return scalar_op(op.scalar, converted, compute)

    return [elementwise(fe, values, types, out_type, body)]


@rule(ops.Cast)
def _cast(fe, node, values):
    src = node.inputs[0].dtype
    return [elementwise(fe, values, [node.inputs[0].type], node.outputs[0].type,
                        lambda s: cast_scalar(s[0], src, node.op.dtype))]


@rule(ops.Fill)
def _fill(fe, node, values):
    out = node.outputs[0].type
    elem = element_type(out.dtype)
    const = arith.constant(elem, float(node.op.value) if out.dtype.startswith("float") else int(node.op.value))
    if out.ndim == 0:
        return [tensor.from_elements(ir.RankedTensorType.get([], elem), [const])]
    return [fill(const, empty(dims(values[0]), out))]


@rule(ops.Alloc)
def _alloc(fe, node, values):
    out = node.outputs[0].type
    value = store_scalar(cast_scalar(scalar_of(values[0], node.inputs[0].dtype), node.inputs[0].dtype,
                                     out.dtype), out.dtype)
    sizes = []
    for v, var in zip(values[1:], node.inputs[1:]):
        size = to_index(v, var.dtype)
        fe.check(arith.cmpi(arith.CmpIPredicate.sge, size, index_const(0)), st.BAD_ALLOC)
        sizes.append(index_max(size, index_const(0)))
    if out.ndim == 0:
        return [tensor.from_elements(ir.RankedTensorType.get([], value.type), [value])]
    return [fill(value, empty(sizes, out))]


@rule(ops.ARange)
def _arange(fe, node, values):
    dtype = node.op.dtype
    start, stop, step = (scalar_of(v, dtype) for v in values)
    t = compute_type(dtype)
    if dtype.startswith("float"):
        zero = arith.constant(t, 0.0)
        fe.check(arith.cmpf(arith.CmpFPredicate.UNE, step, zero), st.BAD_ALLOC)
        count = math.ceil(arith.divf(arith.subf(stop, start), step))
        count = arith.fptosi(ir.IntegerType.get_signless(64), arith.maximumf(count, zero))
        size = arith.index_cast(ir.IndexType.get(), count)
    else:
        zero = arith.constant(t, 0)
        nonzero = arith.cmpi(arith.CmpIPredicate.ne, step, zero)
        fe.check(nonzero, st.BAD_ALLOC)
        safe_step = arith.select(nonzero, step, arith.constant(t, 1))
        count = arith.ceildivsi(arith.subi(stop, start), safe_step)
        count = arith.select(nonzero, arith.maxsi(count, zero), zero)
        size = arith.index_cast(ir.IndexType.get(), count)
    init = empty([size], node.outputs[0].type)

    def body(args):
        i = arith.index_cast(ir.IntegerType.get_signless(64), loop_index(0))
        if dtype.startswith("float"):
            return arith.addf(start, arith.mulf(arith.sitofp(t, i), step))
        return arith.addi(start, arith.muli(cast_scalar(i, "int64", dtype), step))

    return [generic([], init, [ir.AffineMap.get_identity(1)], ["parallel"], body)]


def loop_index(axis: int) -> ir.Value:
    """The current iteration's index along `axis` inside a linalg.generic body."""
    return linalg.IndexOp(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), axis)).result


_IDENTITY = {"sum": 0, "prod": 1}


def _reduce_identity(kind: str, dtype: str) -> ir.Value:
    t = element_type(dtype)
    if kind in _IDENTITY:
        v = _IDENTITY[kind]
        return arith.constant(t, float(v) if dtype.startswith("float") else v)
    if dtype.startswith("float"):
        return arith.constant(t, float("-inf") if kind == "max" else float("inf"))
    import numpy as np
    info = np.iinfo(dtype) if dtype != "bool" else None
    if info is None:
        return arith.constant(t, 0 if kind == "max" else 1)
    return arith.constant(t, int(info.min if kind == "max" else info.max))


@rule(ops.Reduce)
def _reduce(fe, node, values):
    x = node.inputs[0]
    op = node.op
    out = node.outputs[0].type
    kept = [a for a in range(x.ndim) if a not in op.axes]
    init = fill(_reduce_identity(op.kind, out.dtype), empty([dim(values[0], a) for a in kept], out)
                if kept else tensor.empty([], element_type(out.dtype)))
    out_map = ir.AffineMap.get(x.ndim, 0, [ir.AffineDimExpr.get(a) for a in kept])
    kinds = ["reduction" if a in op.axes else "parallel" for a in range(x.ndim)]
    is_float = out.dtype.startswith("float")

    def body(args):
        v = cast_scalar(load_scalar(args[0], x.dtype), x.dtype, out.dtype)
        acc = load_scalar(args[1], out.dtype)
        if op.kind == "sum":
            r = scalar_op("add", [acc, v], out.dtype)
        elif op.kind == "prod":
            r = scalar_op("mul", [acc, v], out.dtype)
        elif op.kind == "max":
            r = arith.maximumf(acc, v) if is_float else (arith.ori(acc, v) if out.dtype == "bool" else arith.maxsi(acc, v))
        else:
            r = arith.minimumf(acc, v) if is_float else (arith.andi(acc, v) if out.dtype == "bool" else arith.minsi(acc, v))
        return store_scalar(r, out.dtype)

    return [generic([values[0]], init, [ir.AffineMap.get_identity(x.ndim), out_map], kinds, body)]


@rule(ops.Dot)
def _dot(fe, node, values):
    x, y = node.inputs
    a, b = values
    out = node.outputs[0].type
    if (MATMUL_TILE["rows"] and (x.ndim, y.ndim) == (2, 2) and x.dtype == y.dtype == out.dtype
            and out.dtype.startswith("float")):
        # a transposed left operand (x = z.T) is read in place: the tile reads it element-wise
        transposed = (x.owner is not None and isinstance(x.owner.op, ops.DimShuffle)
                      and x.owner.op.order == (1, 0) and x.owner.inputs[0] in fe.values)
        source = fe.value(x.owner.inputs[0]) if transposed else a
        ka, kb = dim(source, 0 if transposed else 1), dim(b, 0)
        if ka != kb:
            fe.check(arith.cmpi(arith.CmpIPredicate.eq, ka, kb), st.SHAPE_MISMATCH)
        return [register_tiled_matmul(source, b, out.dtype, transposed, index_min(ka, kb) if ka != kb else ka)]
    ka, kb = dim(a, x.ndim - 1), dim(b, 0)
    if ka != kb:
        fe.check(arith.cmpi(arith.CmpIPredicate.eq, ka, kb), st.SHAPE_MISMATCH)
        k = index_min(ka, kb)
        a = _slice_axis(a, x.ndim - 1, k)
        b = _slice_axis(b, 0, k)
    d = ir.AffineDimExpr.get
    if (x.ndim, y.ndim) == (2, 2):
        # loops (i, k, j): the innermost loop runs along rows of b and out (contiguous),
        # so it vectorizes without a horizontal reduction
        n_loops, amap, bmap, omap = 3, [d(0), d(1)], [d(1), d(2)], [d(0), d(2)]
        sizes = [dim(a, 0), dim(b, 1)]
    elif (x.ndim, y.ndim) == (2, 1):
        n_loops, amap, bmap, omap = 2, [d(0), d(1)], [d(1)], [d(0)]
        sizes = [dim(a, 0)]
    elif (x.ndim, y.ndim) == (1, 2):
        n_loops, amap, bmap, omap = 2, [d(1)], [d(1), d(0)], [d(0)]
        sizes = [dim(b, 1)]
    else:
        n_loops, amap, bmap, omap = 1, [d(0)], [d(0)], []
        sizes = []
    zero = _reduce_identity("sum", out.dtype)
    init = fill(zero, empty(sizes, out) if sizes else tensor.empty([], element_type(out.dtype)))
    maps = [ir.AffineMap.get(n_loops, 0, m) for m in (amap, bmap, omap)]
    kinds = ["parallel"] * (n_loops - 1) + ["reduction"]
    if (x.ndim, y.ndim) == (2, 2) and MATMUL_TILE["rows"]:
        kinds = ["parallel", "reduction", "parallel"]
    elif (x.ndim, y.ndim) == (2, 2):  # GPU: (i, j) in parallel, each thread reduces over k
        maps = [ir.AffineMap.get(3, 0, m) for m in ([d(0), d(2)], [d(2), d(1)], [d(0), d(1)])]

    def body(args):
        p = scalar_op("mul", [cast_scalar(load_scalar(args[0], x.dtype), x.dtype, out.dtype),
                              cast_scalar(load_scalar(args[1], y.dtype), y.dtype, out.dtype)], out.dtype)
        return store_scalar(scalar_op("add", [load_scalar(args[2], out.dtype), p], out.dtype), out.dtype)

    return [generic([a, b], init, maps, kinds, body)]


# the CPU being compiled for decides the register tile of matrix products
# (target_info.matmul_tile); artifact.build sets it around emission. rows = 0 (the
# cuda target): no register tile, loops (i, j, k) so (i, j) map to GPU threads
MATMUL_TILE = {"rows": 8, "bytes": 128}


def register_tiled_matmul(a: ir.Value, b: ir.Value, dtype: str, transpose_a: bool, k_dim: ir.Value) -> ir.Value:
    """a @ b (a.T @ b with `transpose_a`) with a tile of rows x lanes accumulators kept in
    vector registers over the first `k_dim` terms.

    Every tile is computed with masked loads/stores on its columns and clamped row
    indices for the rows past the end, so any shape works and nothing is read or
    written outside the operands.
    """
    from mlir.dialects import scf, vector
    elem = element_type(dtype)
    rows_per_tile = MATMUL_TILE["rows"]
    lanes = MATMUL_TILE["bytes"] // (4 if dtype == "float32" else 8)
    vtype = ir.VectorType.get([lanes], elem)
    mask_type = ir.VectorType.get([lanes], ir.IntegerType.get_signless(1))
    m, n = dim(a, 1 if transpose_a else 0), dim(b, 1)
    zero_i, one_i = index_const(0), index_const(1)
    c = tensor.empty([_fold_index(m), _fold_index(n)], elem)
    pad = arith.constant(elem, 0.0)
    row_map = ir.AffineMapAttr.get(ir.AffineMap.get(2, 0, [ir.AffineDimExpr.get(1)]))
    in_bounds = ir.ArrayAttr.get([ir.BoolAttr.get(False)])
    rows_loop = scf.ForOp(zero_i, m, index_const(rows_per_tile), [c])
    with ir.InsertionPoint(rows_loop.body):
        i0 = rows_loop.induction_variable
        cols_loop = scf.ForOp(zero_i, n, index_const(lanes), [rows_loop.inner_iter_args[0]])
        with ir.InsertionPoint(cols_loop.body):
            j0 = cols_loop.induction_variable
            cols = index_min(index_const(lanes), arith.subi(n, j0))
            mask = vector.CreateMaskOp(mask_type, [cols]).result
            last_row = arith.subi(m, one_i)
            rows = [index_min(arith.addi(i0, index_const(r)), last_row) for r in range(rows_per_tile)]
            zero_v = vector.BroadcastOp(vtype, pad).result
            k_loop = scf.ForOp(zero_i, k_dim, one_i, [zero_v] * rows_per_tile)
            with ir.InsertionPoint(k_loop.body):
                k = k_loop.induction_variable
                bv = vector.TransferReadOp(vtype, b, [k, j0], row_map, pad, in_bounds, mask=mask).result
                accs = []
                for r, acc in enumerate(k_loop.inner_iter_args):
                    index = [k, rows[r]] if transpose_a else [rows[r], k]
                    av = vector.BroadcastOp(vtype, tensor.extract(a, index)).result
                    accs.append(vector.FMAOp(av, bv, acc).result)
                scf.YieldOp(accs)
            out = cols_loop.inner_iter_args[0]
            for r, acc in enumerate(k_loop.results):
                valid = arith.cmpi(arith.CmpIPredicate.slt, arith.addi(i0, index_const(r)), m)
                row_cols = arith.select(valid, cols, zero_i)
                row_mask = vector.CreateMaskOp(mask_type, [row_cols]).result
                out = vector.TransferWriteOp(out.type, acc, out, [rows[r], j0], row_map, in_bounds,
                                             mask=row_mask).result
            scf.YieldOp([out])
        scf.YieldOp([cols_loop.results[0]])
    return rows_loop.results[0]


def _slice_axis(value: ir.Value, axis: int, size: ir.Value) -> ir.Value:
    rtype = ir.RankedTensorType(value.type)
    sizes = [DYN if i == axis else s for i, s in enumerate(rtype.shape)]
    dyn_sizes = [size if i == axis else dim(value, i) for i in range(rtype.rank)
                 if (i == axis or rtype.shape[i] == DYN)]
    result = ir.RankedTensorType.get(sizes, rtype.element_type)
    return tensor.ExtractSliceOp(result, value, [], dyn_sizes, [], [0] * rtype.rank, sizes,
                                 [1] * rtype.rank).result


@rule(ops.DimShuffle)
def _dimshuffle(fe, node, values):
    x = node.inputs[0]
    order = node.op.order
    out = node.outputs[0].type
    sizes = [index_const(1) if o == "x" else dim(values[0], o) for o in order]
    exprs = []
    for axis in range(x.ndim):
        if axis in order:
            exprs.append(ir.AffineDimExpr.get(order.index(axis)))
        else:
            exprs.append(ir.AffineConstantExpr.get(0))
    maps = [ir.AffineMap.get(out.ndim, 0, exprs), ir.AffineMap.get_identity(out.ndim)]
    if out.ndim == 0:
        return [tensor.from_elements(ir.RankedTensorType.get([], element_type(out.dtype)),
                                     [tensor.extract(values[0], [index_const(0)] * x.ndim)])]
    return [generic([values[0]], empty(sizes, out), maps, ["parallel"] * out.ndim, lambda a: a[0])]


@rule(ops.ShapeI)
def _shape_i(fe, node, values):
    size = arith.index_cast(ir.IntegerType.get_signless(64), dim(values[0], node.op.axis))
    return [scalar_tensor(size, "int64")]


@rule(ops.MakeVector)
def _make_vector(fe, node, values):
    elems = [store_scalar(scalar_of(v, var.dtype), var.dtype) for v, var in zip(values, node.inputs)]
    static = ir.RankedTensorType.get([len(elems)], element_type(node.outputs[0].dtype))
    return [tensor.from_elements(static, elems)]


# ---------------------------------------------------------------- indexing
def index_region(fe: FunctionEmitter, spec, source: ir.Value, scalars, scalar_vars):
    """Per indexed axis: (offset, size, step, keep) index values, with bounds checks.

    Integer indices are normalized (negative counts from the end), checked, and
    clamped so that even a failed check never reads outside the tensor.
    """
    regions = []
    it = iter(zip(scalars, scalar_vars))
    zero, one = index_const(0), index_const(1)
    for axis, entry in enumerate(spec):
        n = dim(source, axis)
        if entry[0] == "int":
            v, var = next(it)
            i = to_index(v, var.dtype)
            i = arith.select(arith.cmpi(arith.CmpIPredicate.slt, i, zero), arith.addi(i, n), i)
            inside = arith.andi(arith.cmpi(arith.CmpIPredicate.sge, i, zero),
                                arith.cmpi(arith.CmpIPredicate.slt, i, n))
            fe.check(inside, st.INDEX_OUT_OF_BOUNDS)
            i = index_max(index_min(i, arith.subi(n, one)), zero)
            regions.append((i, one, 1, False))
            continue
        _, has_start, has_stop, step = entry
        start = to_index(*next(it)) if has_start else None
        stop = to_index(*next(it)) if has_stop else None
        low = zero if step > 0 else index_const(-1)
        high = n if step > 0 else arith.subi(n, one)

        def clip(i):
            i = arith.select(arith.cmpi(arith.CmpIPredicate.slt, i, zero), arith.addi(i, n), i)
            return index_max(index_min(i, high), low)

        if step > 0:
            lo = zero if start is None else clip(start)
            hi = n if stop is None else clip(stop)
            span = arith.subi(hi, lo)
        else:
            lo = arith.subi(n, one) if start is None else clip(start)
            hi = index_const(-1) if stop is None else clip(stop)
            span = arith.subi(lo, hi)
        size = index_max(arith.ceildivsi(span, index_const(abs(step))), zero)
        regions.append((lo, size, step, True))
    return regions


def _region_slice(source: ir.Value, regions, keep_all: bool = False):
    """Offsets/sizes/strides for extract/insert_slice (all steps positive)."""
    rtype = ir.RankedTensorType(source.type)
    offsets, sizes, strides = [], [], []
    for axis in range(rtype.rank):
        if axis < len(regions):
            off, size, step, _ = regions[axis]
            offsets.append(off)
            sizes.append(size)
            strides.append(step)
        else:
            offsets.append(index_const(0))
            sizes.append(dim(source, axis))
            strides.append(1)
    return offsets, sizes, strides


def _slice_op_args(offsets, sizes, strides):
    static_off, dyn_off, static_size, dyn_size = [], [], [], []
    for v in offsets:
        c = _fold_index(v)
        static_off.append(c if isinstance(c, int) else DYN)
        if not isinstance(c, int):
            dyn_off.append(v)
    for v in sizes:
        c = _fold_index(v)
        static_size.append(c if isinstance(c, int) else DYN)
        if not isinstance(c, int):
            dyn_size.append(v)
    return dyn_off, dyn_size, static_off, static_size, list(strides)


@rule(ops.Subtensor)
def _subtensor(fe, node, values):
    from .scan_trace import ScanOp
    x = node.inputs[0]
    out = node.outputs[0].type
    spec = node.op.spec
    if (x.owner is not None and isinstance(x.owner.op, ScanOp) and spec == (("int",),)
            and _is_constant(node.inputs[1], -1)):
        # result[-1] of a scan: the dialect's op, which scan-keep-last can remove
        return [ir.Operation.create("scan.last", results=[tensor_type(out)], operands=[values[0]]).result]
    regions = index_region(fe, spec, values[0], values[1:], node.inputs[1:])
    offsets, sizes, strides = _region_slice(values[0], regions)
    if any(s < 0 for s in strides):
        return [_gather(values[0], offsets, sizes, strides, regions, out)]
    dyn_off, dyn_size, s_off, s_size, s_stride = _slice_op_args(offsets, sizes, strides)
    kept_shape = [s for axis, s in enumerate(s_size)
                  if axis >= len(regions) or regions[axis][3]]
    result = ir.RankedTensorType.get(kept_shape, element_type(out.dtype))
    return [tensor.ExtractSliceOp(result, values[0], dyn_off, dyn_size, [], s_off, s_size, s_stride).result]


def _gather(source, offsets, sizes, strides, regions, out):
    """Indexing with a negative step: each output element reads source[offset + i*step]."""
    kept = [axis for axis in range(len(offsets)) if axis >= len(regions) or regions[axis][3]]
    init = empty([sizes[a] for a in kept], out)

    def body(args):
        idx, k = [], 0
        for axis in range(len(offsets)):
            if axis in kept:
                step = index_const(strides[axis])
                idx.append(arith.addi(offsets[axis], arith.muli(loop_index(k), step)))
                k += 1
            else:
                idx.append(offsets[axis])
        return tensor.extract(source, idx)

    return generic([], init, [ir.AffineMap.get_identity(len(kept))], ["parallel"] * len(kept), body)


def _is_constant(var, value) -> bool:
    from .graph import Constant
    v = var
    while v.owner is not None and isinstance(v.owner.op, ops.Cast):
        v = v.owner.inputs[0]
    return isinstance(v, Constant) and v.data.ndim == 0 and int(v.data) == value


@rule(ops.IncSubtensor)
def _inc_subtensor(fe, node, values):
    x, y = node.inputs[:2]
    spec = node.op.spec
    regions = index_region(fe, spec, values[0], values[2:], node.inputs[2:])
    # a negative step selects the same elements as a positive one from the other end,
    # in reverse order: write through the positive slice and read y reversed there
    reversed_axes = set()
    for axis, (lo, size, step, keep) in enumerate(regions):
        if step < 0:
            last = arith.muli(index_max(arith.subi(size, index_const(1)), index_const(0)), index_const(step))
            regions[axis] = (arith.addi(lo, last), size, -step, keep)
            reversed_axes.add(axis)
    offsets, sizes, strides = _region_slice(values[0], regions)
    region_sizes = [s for axis, s in enumerate(sizes) if axis >= len(regions) or regions[axis][3]]
    region_type = ops.TensorType(x.dtype, [False] * len(region_sizes))
    # y broadcast to the region (checked: a mismatch shrinks the region, never overruns y)
    for axis in range(y.ndim):
        r_axis = axis + len(region_sizes) - y.ndim
        if not y.broadcastable[axis]:
            ydim = dim(values[1], axis)
            fe.check(arith.cmpi(arith.CmpIPredicate.eq, ydim, region_sizes[r_axis]), st.SHAPE_MISMATCH)
            region_sizes[r_axis] = index_min(ydim, region_sizes[r_axis])
    k = 0
    for axis in range(len(sizes)):
        if axis >= len(regions) or regions[axis][3]:
            sizes[axis] = region_sizes[k]
            k += 1
    dyn_off, dyn_size, s_off, s_size, s_stride = _slice_op_args(offsets, sizes, strides)
    init = empty(region_sizes, region_type)
    kept_axes = [a for a in range(len(sizes)) if a >= len(regions) or regions[a][3]]
    flipped = [kept_axes.index(a) for a in reversed_axes if a in kept_axes]
    y_value = _flip(values[1], y.type, len(region_sizes), flipped) if flipped else values[1]
    maps = [input_map(y.type, len(region_sizes)), ir.AffineMap.get_identity(len(region_sizes))]
    values = [values[0], y_value, *values[2:]]
    if node.op.set:
        if region_sizes:
            patch = generic([values[1]], init, maps, ["parallel"] * len(region_sizes), lambda a: a[0])
        else:
            patch = values[1]
    else:
        current = tensor.ExtractSliceOp(_reduced_type(region_sizes, x.dtype), values[0], dyn_off,
                                        dyn_size, [], s_off, s_size, s_stride).result
        dtype = x.dtype
        if region_sizes:
            maps = [maps[0], ir.AffineMap.get_identity(len(region_sizes)), maps[1]]
            patch = generic([values[1], current], init, maps, ["parallel"] * len(region_sizes),
                            lambda a: store_scalar(scalar_op("add", [load_scalar(a[1], dtype),
                                                                     load_scalar(a[0], dtype)], dtype), dtype))
        else:
            patch = scalar_tensor(scalar_op("add", [scalar_of(current, dtype), scalar_of(values[1], dtype)],
                                            dtype), dtype)
    patch = _to_static(patch, s_size, regions)
    return [tensor.InsertSliceOp(patch, values[0], dyn_off, dyn_size, [], s_off, s_size, s_stride).result]


def _flip(y: ir.Value, y_type, region_rank: int, flipped: list[int]) -> ir.Value:
    """y reversed along the region dims in `flipped` (broadcast dims need no reversal)."""
    offset = region_rank - y_type.ndim
    axes = [r - offset for r in flipped if r - offset >= 0 and not y_type.broadcastable[r - offset]]
    if not axes:
        return y
    sizes = dims(y)
    init = tensor.empty([_fold_index(v) for v in sizes], ir.RankedTensorType(y.type).element_type)

    def body(args):
        idx = []
        for a in range(y_type.ndim):
            i = loop_index(a)
            if a in axes:
                i = arith.subi(arith.subi(sizes[a], index_const(1)), i)
            idx.append(i)
        return tensor.extract(y, idx)

    return generic([], init, [ir.AffineMap.get_identity(y_type.ndim)], ["parallel"] * y_type.ndim, body)


def _reduced_type(region_sizes, dtype):
    shape = [(_fold_index(v) if isinstance(_fold_index(v), int) else DYN) for v in region_sizes]
    return ir.RankedTensorType.get(shape, element_type(dtype))


def _to_static(patch, s_size, regions):
    """Cast the patch to the static sizes insert_slice expects."""
    kept = [s for axis, s in enumerate(s_size) if axis >= len(regions) or regions[axis][3]]
    want = ir.RankedTensorType.get(kept, ir.RankedTensorType(patch.type).element_type)
    return patch if patch.type == want else tensor.cast(want, patch)


@rule(ops.FinalValue)
def _final_value(fe, node, values):
    """`scan.final`: scan-keep-last turns it into a keep="final" output when it can."""
    out_type = tensor_type(node.outputs[0].type)
    return [ir.Operation.create("scan.final", results=[out_type], operands=values).result]


def _register_scan() -> None:
    from .emit_scan import emit_scan
    from .scan_trace import ScanOp
    RULES[ScanOp] = emit_scan


_register_scan()
