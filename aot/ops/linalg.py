"""Products of vectors and matrices: `dot` (Dot).

On the cpu target a matrix-matrix product is a register-tiled loop nest (the tile
is the CPU variant's, targets/cpu_features.matmul_tile); other ranks and the cuda
target get a `linalg.generic` contraction.
"""
from __future__ import annotations

from typing import Any

from mlir import ir
from mlir.dialects import arith, tensor

from ..emit.builders import (DYN, cast_scalar, dim, element_type, empty, fill, fold_index, generic, index_const,
                             index_min, load_scalar, store_scalar)
from ..graph import dtypes, rules
from ..graph.basic import Apply, Op, TensorType, Variable, as_tensor_variable
from ..runtime import status as st
from .elemwise import mul, scalar_op
from .reduction import reduce_identity
from .shape import DimShuffle, dimshuffle


class Dot(Op):
    """Matrix/vector products: (1,1)->0, (2,1)->1, (1,2)->1, (2,2)->2 dims."""

    def make_node(self, x: Variable, y: Variable) -> Apply:
        if x.ndim not in (1, 2) or y.ndim not in (1, 2):
            raise TypeError(f"dot: expected vectors or matrices, got {x.describe()} and {y.describe()}")
        bcast = list(x.broadcastable[:-1]) + list(y.broadcastable[1:])
        return Apply(self, [x, y], [TensorType(dtypes.upcast(x.dtype, y.dtype), bcast)])

    def infer_shape(self, node, input_shapes):
        xs, ys = input_shapes
        return [list(xs[:-1]) + list(ys[1:])]


@rules.emission(Dot)
def _emit_dot(fe, node, values):
    x, y = node.inputs
    a, b = values
    out = node.outputs[0].type
    tile = fe.module.matmul_tile
    if (tile[0] and (x.ndim, y.ndim) == (2, 2) and x.dtype == y.dtype == out.dtype
            and out.dtype.startswith("float")):
        # a transposed left operand (x = z.T) is read in place: the tile reads it element-wise
        transposed = (x.owner is not None and isinstance(x.owner.op, DimShuffle)
                      and x.owner.op.order == (1, 0) and x.owner.inputs[0] in fe.values)
        source = fe.value(x.owner.inputs[0]) if transposed else a
        ka, kb = dim(source, 0 if transposed else 1), dim(b, 0)
        if ka != kb:
            fe.check(arith.cmpi(arith.CmpIPredicate.eq, ka, kb), st.SHAPE_MISMATCH)
        return [register_tiled_matmul(source, b, out.dtype, transposed,
                                      index_min(ka, kb) if ka != kb else ka, tile)]
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
    zero = reduce_identity("sum", out.dtype)
    init = fill(zero, empty(sizes, out) if sizes else tensor.empty([], element_type(out.dtype)))
    maps = [ir.AffineMap.get(n_loops, 0, m) for m in (amap, bmap, omap)]
    kinds = ["parallel"] * (n_loops - 1) + ["reduction"]
    if (x.ndim, y.ndim) == (2, 2) and tile[0]:
        kinds = ["parallel", "reduction", "parallel"]
    elif (x.ndim, y.ndim) == (2, 2):  # GPU: (i, j) in parallel, each thread reduces over k
        maps = [ir.AffineMap.get(3, 0, m) for m in ([d(0), d(2)], [d(2), d(1)], [d(0), d(1)])]

    def body(args):
        p = scalar_op("mul", [cast_scalar(load_scalar(args[0], x.dtype), x.dtype, out.dtype),
                              cast_scalar(load_scalar(args[1], y.dtype), y.dtype, out.dtype)], out.dtype)
        return store_scalar(scalar_op("add", [load_scalar(args[2], out.dtype), p], out.dtype), out.dtype)

    return [generic([a, b], init, maps, kinds, body)]


def register_tiled_matmul(a: ir.Value, b: ir.Value, dtype: str, transpose_a: bool, k_dim: ir.Value,
                          tile: tuple[int, int]) -> ir.Value:
    """a @ b (a.T @ b with `transpose_a`) with a tile of rows x lanes accumulators kept in
    vector registers over the first `k_dim` terms.

    Every tile is computed with masked loads/stores on its columns and clamped row
    indices for the rows past the end, so any shape works and nothing is read or
    written outside the operands. `tile`: (rows, bytes per row) of accumulators, the
    CPU variant's (targets/cpu_features.matmul_tile).
    """
    from mlir.dialects import scf, vector
    elem = element_type(dtype)
    rows_per_tile, row_bytes = tile
    lanes = row_bytes // (4 if dtype == "float32" else 8)
    vtype = ir.VectorType.get([lanes], elem)
    mask_type = ir.VectorType.get([lanes], ir.IntegerType.get_signless(1))
    m, n = dim(a, 1 if transpose_a else 0), dim(b, 1)
    zero_i, one_i = index_const(0), index_const(1)
    c = tensor.empty([fold_index(m), fold_index(n)], elem)
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


@rules.vjp(Dot)
def _vjp_dot(node, cots, needed):
    x, y = node.inputs
    g = cots[0]
    if (x.ndim, y.ndim) == (2, 2):
        return [dot(g, y.T), dot(x.T, g)]
    if (x.ndim, y.ndim) == (2, 1):
        return [dimshuffle(g, 0, "x") * dimshuffle(y, "x", 0), dot(x.T, g)]
    if (x.ndim, y.ndim) == (1, 2):
        return [dot(y, g), dimshuffle(x, 0, "x") * dimshuffle(g, "x", 0)]
    return [g * y, g * x]



# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "dot",
]

def dot(x: Any, y: Any) -> Variable:
    """Matrix product for vectors/matrices; scalars multiply elementwise (Aesara's rule)."""
    x, y = as_tensor_variable(x), as_tensor_variable(y)
    if x.ndim == 0 or y.ndim == 0:
        return mul(x, y)
    return Dot()(x, y)


