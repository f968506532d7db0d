"""Products of tensors: `dot` (Dot for vectors and matrices, Contract above),
`tensordot`, `outer`, `batched_dot`, `matmul` (`x @ y`).

On the cpu target a matrix-matrix product is a call tagged `scan.matmul`, which each
CPU variant replaces with its register-tiled loop nest (passes/tile_matmuls.py);
other ranks and the cuda target get a `linalg.generic` contraction. Every product of higher rank is one
Contract: an einsum of two operands written as axis labels, emitted as a single
`linalg.generic` (no reshapes, so no copies), whose VJP is two more Contracts.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from mlir import ir
from mlir.dialects import arith, func, tensor

from ..emit.builders import (DYN, TILED_PRODUCT, cast_scalar, dim, element_type, empty, fill, fold_index, generic,
                             index_min, load_scalar, store_scalar)
from ..graph import dtypes, rules
from ..graph.basic import Apply, Op, TensorType, Variable, as_tensor_variable
from ..runtime import status as st
from .elemwise import cast, mul, scalar_op
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
    tiled = fe.module.tiled_matmuls
    if (tiled and (x.ndim, y.ndim) == (2, 2) and x.dtype == y.dtype == out.dtype
            and out.dtype.startswith("float")):
        # a transposed left operand (x = z.T) is read in place: the tile reads it element-wise
        transposed = (x.owner is not None and isinstance(x.owner.op, DimShuffle)
                      and x.owner.op.order == (1, 0) and x.owner.inputs[0] in fe.values)
        source = fe.value(x.owner.inputs[0]) if transposed else a
        ka, kb = dim(source, 0 if transposed else 1), dim(b, 0)
        if ka != kb:
            fe.check(arith.cmpi(arith.CmpIPredicate.eq, ka, kb), st.SHAPE_MISMATCH)
        return [tiled_product(fe, source, b, transposed, index_min(ka, kb) if ka != kb else ka,
                              packed=y in fe.invariant, depth_blocks=not fe.per_step)]
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
    if (x.ndim, y.ndim) == (2, 2) and tiled:
        kinds = ["parallel", "reduction", "parallel"]
    elif (x.ndim, y.ndim) == (2, 2):  # GPU: (i, j) in parallel, each thread reduces over k
        maps = [ir.AffineMap.get(3, 0, m) for m in ([d(0), d(2)], [d(2), d(1)], [d(0), d(1)])]
    return [generic([a, b], init, maps, kinds, _multiply_add(x.dtype, y.dtype, out.dtype))]


def tiled_product(fe, a: ir.Value, b: ir.Value, transpose_a: bool, depth: ir.Value, packed: bool,
                  depth_blocks: bool) -> ir.Value:
    """a @ b (a.T @ b) over the first `depth` terms, written into a new tensor: a call
    tagged `scan.matmul` (to a declared function), which each CPU variant replaces with
    its own tile after the front end they share (passes/tile_matmuls.py). A call, not
    an op of its own: the step bodies holding it must stay inlinable."""
    rank = ir.RankedTensorType(a.type).rank
    lead = [dim(a, 1)] if transpose_a else [dim(a, axis) for axis in range(rank - 1)]
    init = tensor.empty([fold_index(s) for s in lead + [dim(b, 1)]], ir.RankedTensorType(a.type).element_type)
    operands = [a, b, depth, init]
    callee = fe.module.declaration("matmul", [v.type for v in operands], [init.type])
    call = func.CallOp([init.type], ir.FlatSymbolRefAttr.get(callee), operands)
    call.attributes[TILED_PRODUCT] = ir.DictAttr.get(
        {"transpose_lhs": ir.BoolAttr.get(transpose_a), "packed": ir.BoolAttr.get(packed),
         "depth_blocks": ir.BoolAttr.get(depth_blocks)})
    return call.results[0]


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


class Contract(Op):
    """An einsum of two operands: `x_labels`, `y_labels` name each input axis, the
    output has `out_labels`; labels missing from the output are summed over.

    A label in `broadcast` (matmul's batch dims) may be broadcastable in one operand
    and full in the other (read at index 0); any other label's sizes must agree, a
    run-time check (SHAPE_MISMATCH) that the shape pre-check cannot see.
    """

    def __init__(self, x_labels: tuple[int, ...], y_labels: tuple[int, ...], out_labels: tuple[int, ...],
                 broadcast: frozenset[int] = frozenset()):
        self.x_labels, self.y_labels, self.out_labels = tuple(x_labels), tuple(y_labels), tuple(out_labels)
        self.broadcast = frozenset(broadcast)
        unsummed = set(self.x_labels) ^ set(self.y_labels)
        if not unsummed <= set(self.out_labels) or not set(self.out_labels) <= set(self.x_labels + self.y_labels):
            raise ValueError(f"contract: labels {self.x_labels}, {self.y_labels} -> {self.out_labels} "
                             "sum over a label only one operand has, or output one neither has")

    def __str__(self) -> str:
        return f"contract{self.x_labels},{self.y_labels}->{self.out_labels}"

    def make_node(self, x: Variable, y: Variable) -> Apply:
        for name, v, labels in (("x", x, self.x_labels), ("y", y, self.y_labels)):
            if v.ndim != len(labels):
                raise TypeError(f"contract: expected {name} with {len(labels)} dims, got {v.describe()}")
        bcast = [all(b for _, b in self._occurrences(x, y, label)) for label in self.out_labels]
        return Apply(self, [x, y], [TensorType(dtypes.upcast(x.dtype, y.dtype), bcast)])

    def _occurrences(self, x: Variable, y: Variable, label: int) -> list[tuple[tuple[int, int], bool]]:
        """((operand, axis), broadcastable) for each axis carrying `label`."""
        return [((i, axis), v.broadcastable[axis])
                for i, (v, labels) in enumerate(((x, self.x_labels), (y, self.y_labels)))
                for axis, l in enumerate(labels) if l == label]

    def reads_at_zero(self, x: Variable, y: Variable, label: int) -> set[tuple[int, int]]:
        """The axes of `label` that broadcast (read at index 0) against a full one."""
        occ = self._occurrences(x, y, label)
        if label not in self.broadcast or all(b for _, b in occ):
            return set()
        return {where for where, b in occ if b}

    def infer_shape(self, node, input_shapes):
        x, y = node.inputs
        dims = []
        for label in self.out_labels:
            skip = self.reads_at_zero(x, y, label)
            full = [where for where, _ in self._occurrences(x, y, label) if where not in skip]
            dims.append(input_shapes[full[0][0]][full[0][1]])
        return [dims]


def _rows_times_matrix(fe, node) -> bool:
    """A stack of rows times a matrix (`x_t @ W` over a whole sequence): the cpu's
    register-tiled matmul computes it, as it does 2-d products."""
    op, (x, y), out = node.op, node.inputs, node.outputs[0].type
    return (fe.module.tiled_matmuls and y.ndim == 2 and x.ndim > 2 and dtypes.is_float(out.dtype)
            and x.dtype == y.dtype == out.dtype and not any(x.broadcastable) and not any(y.broadcastable)
            and not op.broadcast and op.x_labels[-1] == op.y_labels[0]
            and op.out_labels == op.x_labels[:-1] + (op.y_labels[1],))


@rules.emission(Contract)
def _emit_contract(fe, node, values):
    op, (x, y), out = node.op, node.inputs, node.outputs[0].type
    values = list(values)
    if _rows_times_matrix(fe, node):
        ka, kb = dim(values[0], x.ndim - 1), dim(values[1], 0)
        fe.check(arith.cmpi(arith.CmpIPredicate.eq, ka, kb), st.SHAPE_MISMATCH)
        return [tiled_product(fe, values[0], values[1], False, index_min(ka, kb), packed=False,
                              depth_blocks=not fe.per_step)]
    summed = [l for l in dict.fromkeys(op.x_labels + op.y_labels) if l not in op.out_labels]
    order = list(op.out_labels) + summed
    if fe.module.tiled_matmuls and op.out_labels and summed:
        # cpu: the last output axis innermost, so the loop runs along contiguous rows
        order = list(op.out_labels[:-1]) + summed + [op.out_labels[-1]]
    sizes, zero_reads = {}, set()
    for label in order:
        zero_reads |= op.reads_at_zero(x, y, label)
        sizes[label] = _agreed_size(fe, values, op._occurrences(x, y, label), zero_reads)
    d = ir.AffineDimExpr.get
    maps = [ir.AffineMap.get(len(order), 0, [ir.AffineConstantExpr.get(0) if (i, axis) in zero_reads
                                              else d(order.index(l)) for axis, l in enumerate(labels)])
            for i, labels in enumerate((op.x_labels, op.y_labels))]
    maps.append(ir.AffineMap.get(len(order), 0, [d(order.index(l)) for l in op.out_labels]))
    zero = reduce_identity("sum", out.dtype)
    init = fill(zero, empty([sizes[l] for l in op.out_labels], out) if op.out_labels
                else tensor.empty([], element_type(out.dtype)))
    kinds = ["parallel" if l in op.out_labels else "reduction" for l in order]
    return [generic(values, init, maps, kinds, _multiply_add(x.dtype, y.dtype, out.dtype))]


def _agreed_size(fe, values: list, occurrences, zero_reads: set) -> ir.Value:
    """The loop size of one label: its axes' common length. Axes that disagree set
    SHAPE_MISMATCH and every operand is cut to the shortest (memory-safe)."""
    full = [where for where, _ in occurrences if where not in zero_reads]
    lengths = [dim(values[i], axis) for i, axis in full]
    size = lengths[0]
    for other in lengths[1:]:
        if fold_index(other) != fold_index(size) or isinstance(fold_index(size), ir.Value):
            fe.check(arith.cmpi(arith.CmpIPredicate.eq, size, other), st.SHAPE_MISMATCH)
            size = index_min(size, other)
    if len(lengths) > 1:
        for i, axis in full:
            values[i] = _slice_axis(values[i], axis, size)
    return size


def _multiply_add(x_dtype: str, y_dtype: str, dtype: str):
    """The body `acc + x * y` in the output dtype (Dot's and Contract's)."""
    def body(args):
        p = scalar_op("mul", [cast_scalar(load_scalar(args[0], x_dtype), x_dtype, dtype),
                              cast_scalar(load_scalar(args[1], y_dtype), y_dtype, dtype)], dtype)
        return store_scalar(scalar_op("add", [load_scalar(args[2], dtype), p], dtype), dtype)
    return body


@rules.vjp(Contract)
def _vjp_contract(node, cots, needed):
    # d(sum x*y)/dx contracts the cotangent with y back onto x's labels (and alike for
    # y); broadcast axes come back full and the engine sums them down
    op, (x, y), g = node.op, node.inputs, cots[0]
    gx = Contract(op.out_labels, op.y_labels, op.x_labels, op.broadcast)(g, y) if needed[0] else None
    gy = Contract(op.x_labels, op.out_labels, op.y_labels, op.broadcast)(x, g) if needed[1] else None
    return [gx, gy]


# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "dot", "tensordot", "outer", "batched_dot", "matmul",
]


def dot(x: Any, y: Any) -> Variable:
    """Aesara's dense dot: scalars multiply, vectors and matrices are a Dot (the fast
    paths), higher ranks contract x's last axis with y's second-to-last (numpy's rule)."""
    x, y = as_tensor_variable(x), as_tensor_variable(y)
    if x.ndim == 0 or y.ndim == 0:
        return mul(x, y)
    if x.ndim <= 2 and y.ndim <= 2:
        return Dot()(x, y)
    return tensordot(x, y, [[x.ndim - 1], [max(0, y.ndim - 2)]])


def _axes_list(axes: Any, name: str, v: Variable) -> list[int]:
    values = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    out = []
    for a in values:
        if not isinstance(a, (int, np.integer)) or not -v.ndim <= a < v.ndim:
            raise ValueError(f"tensordot: {name} axis {a!r} is out of range for {v.describe()}")
        out.append(int(a) % v.ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"tensordot: {name} axes {values} repeat an axis")
    return out


def _tensordot_axes(a: Variable, b: Variable, axes: Any) -> tuple[list[int], list[int]]:
    """`axes` (an int n: a's last n with b's first n; or a pair of lists) as two lists."""
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if not 0 <= n <= min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: axes={n} needs 0 <= axes <= the rank of both a "
                             f"({a.describe()}) and b ({b.describe()})")
        return list(range(a.ndim - n, a.ndim)), list(range(n))
    if not isinstance(axes, (list, tuple)) or len(axes) != 2:
        raise ValueError(f"tensordot: axes should be an int or a pair of axis lists, got {axes!r}")
    a_axes, b_axes = _axes_list(axes[0], "a", a), _axes_list(axes[1], "b", b)
    if len(a_axes) != len(b_axes):
        raise ValueError(f"tensordot: axes {axes!r} name {len(a_axes)} axes of a but {len(b_axes)} of b")
    return a_axes, b_axes


def tensordot(a: Any, b: Any, axes: Any = 2) -> Variable:
    """numpy's tensordot: sum a's `axes[0]` against b's `axes[1]`; the result has a's
    other axes, then b's. One Contract (a Dot where the operands are its shapes)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    a_axes, b_axes = _tensordot_axes(a, b, axes)
    if a.ndim <= 2 and b.ndim <= 2 and len(a_axes) == 1 and (a_axes, b_axes) == ([a.ndim - 1], [0]):
        return Dot()(a, b)
    a_labels = list(range(a.ndim))
    b_labels = [a_labels[a_axes[b_axes.index(i)]] if i in b_axes else a.ndim + i for i in range(b.ndim)]
    out = [l for i, l in enumerate(a_labels) if i not in a_axes] + \
          [l for i, l in enumerate(b_labels) if i not in b_axes]
    return Contract(a_labels, b_labels, out)(a, b)


def outer(x: Any, y: Any) -> Variable:
    """Outer product of two vectors: x[:, None] * y[None, :] (elementwise, so it fuses)."""
    x, y = as_tensor_variable(x), as_tensor_variable(y)
    for name, v in (("x", x), ("y", y)):
        if v.ndim != 1:
            raise TypeError(f"outer: expected {name} to be a vector, got {v.describe()} "
                            "(Aesara flattens it; flatten it first)")
    return mul(dimshuffle(x, 0, "x"), dimshuffle(y, "x", 0))


def batched_dot(a: Any, b: Any) -> Variable:
    """dot(a[i], b[i]) for each i of the first axis (Aesara's rule: a vector operand
    multiplies elementwise; otherwise a's last axis meets b's axis max(1, b.ndim - 2))."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    for name, v in (("a", a), ("b", b)):
        if v.ndim == 0:
            raise TypeError(f"batched_dot: {name} must have at least one (batch) axis, got {v.describe()}")
    if a.ndim == 1:
        return mul(dimshuffle(a, 0, *["x"] * (b.ndim - 1)), b)
    if b.ndim == 1:
        return mul(a, dimshuffle(b, 0, *["x"] * (a.ndim - 1)))
    k = max(1, b.ndim - 2)
    a_labels = list(range(a.ndim))
    b_labels = [0] + [a.ndim - 1 if i == k else a.ndim + i for i in range(1, b.ndim)]
    out = a_labels[:-1] + [l for i, l in enumerate(b_labels) if i not in (0, k)]
    return Contract(a_labels, b_labels, out)(a, b)


def matmul(x1: Any, x2: Any, dtype: str | None = None) -> Variable:
    """numpy's matmul: stacks of matrices in the last two axes, batch axes broadcast
    (by their broadcastable flags); a vector operand is a row (x1) or column (x2)."""
    a, b = as_tensor_variable(x1), as_tensor_variable(x2)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: inputs cannot be scalars, got {a.describe()} and {b.describe()}")
    if a.ndim <= 2 and b.ndim <= 2:
        out = Dot()(a, b)
    else:
        batch = max(a.ndim, b.ndim, 2) - 2
        k, i, j = batch, batch + 1, batch + 2
        a_labels = [k] if a.ndim == 1 else list(range(batch - (a.ndim - 2), batch)) + [i, k]
        b_labels = [k] if b.ndim == 1 else list(range(batch - (b.ndim - 2), batch)) + [k, j]
        out_labels = list(range(batch)) + ([i] if a.ndim > 1 else []) + ([j] if b.ndim > 1 else [])
        out = Contract(a_labels, b_labels, out_labels, frozenset(range(batch)))(a, b)
    return cast(out, dtypes.check(dtype)) if dtype else out
