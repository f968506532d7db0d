"""Matrix functions of small matrices: `matrix_inverse`, `det`, `solve`, `cholesky`.

Each is emitted as plain `scf.for` loops over `tensor.extract`/`tensor.insert` on one
matrix (O(n^3) scalar steps, no library call), so it runs on every target and inside
scan steps. A singular matrix (inverse, solve) or one that is not positive definite
(cholesky) sets the LINALG_ERROR status bit, so the call raises StatusError where
numpy raises LinAlgError; `det` of a singular matrix is 0, as numpy's. Only the
lower triangle of cholesky's input is read (LAPACK's convention). A non-square
matrix sets SHAPE_MISMATCH; loops then run over the leading square block only.
"""
from __future__ import annotations

from typing import Any, Callable

from mlir import ir
from mlir.dialects import arith, scf, tensor
from mlir.dialects import math as mlir_math

from ..emit.builders import dim, element_type, empty, fill, index_const, index_min, scalar_tensor
from ..graph import dtypes, rules
from ..graph.basic import Apply, Op, TensorType, Variable, as_tensor_variable
from ..runtime import status as st
from .creation import arange
from .elemwise import cast, eq, ge, switch
from .linalg import dot, outer
from .shape import dimshuffle


def _check_matrix(op: str, name: str, v: Variable) -> None:
    if v.ndim != 2 or not dtypes.is_float(v.dtype):
        raise TypeError(f"{op}: expected {name} to be a float matrix, got {v.describe()}")


class _OneMatrix:
    """Typing shared by the one-matrix ops (a mixin, not an op): one float matrix in,
    one result of its dtype out (`out_ndim` 2: the matrix's shape; 0: a scalar)."""
    out_ndim = 2

    def make_node(self, x: Variable) -> Apply:
        _check_matrix(type(self).__name__, "x", x)
        return Apply(self, [x], [TensorType(x.dtype, list(x.broadcastable[:self.out_ndim]))])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[0][:1]) * self.out_ndim]


class MatrixInverse(_OneMatrix, Op):
    """inv(x) by Gauss-Jordan elimination with partial pivoting."""


class Det(_OneMatrix, Op):
    """det(x) by LU factorization with partial pivoting."""
    out_ndim = 0


class Cholesky(_OneMatrix, Op):
    """The lower-triangular L with L @ L.T == x (x's lower triangle is read)."""


class Solve(Op):
    """x with a @ x == b (b a vector or a matrix), by Gauss-Jordan elimination."""

    def make_node(self, a: Variable, b: Variable) -> Apply:
        _check_matrix("solve", "a", a)
        if b.ndim not in (1, 2) or b.dtype != a.dtype:
            raise TypeError(f"solve: expected b to be a vector or matrix of a's dtype {a.dtype}, "
                            f"got {b.describe()}")
        return Apply(self, [a, b], [TensorType(a.dtype, list(b.broadcastable))])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[1])]


# ---------------------------------------------------------------- emission helpers
def _loop(lo: ir.Value, hi: ir.Value, carried: list[ir.Value],
          body: Callable[[ir.Value, list[ir.Value]], list[ir.Value]]) -> list[ir.Value]:
    """scf.for lo..hi carrying values; `body(i, carried)` gives the next ones."""
    loop = scf.ForOp(lo, hi, index_const(1), carried)
    with ir.InsertionPoint(loop.body):
        scf.YieldOp(body(loop.induction_variable, list(loop.inner_iter_args)))
    return list(loop.results)


def _at(m: ir.Value, i: ir.Value, j: ir.Value | None) -> ir.Value:
    return tensor.extract(m, [i] if j is None else [i, j])


def _put(v: ir.Value, m: ir.Value, i: ir.Value, j: ir.Value | None) -> ir.Value:
    return tensor.insert(v, m, [i] if j is None else [i, j])


def _each_column(m: ir.Value, start: ir.Value, fn: Callable[[ir.Value, ir.Value | None], ir.Value]) -> ir.Value:
    """`fn(m, j)` for each column j >= start of a matrix (once, with j None, for a vector)."""
    if ir.RankedTensorType(m.type).rank == 1:
        return fn(m, None)
    return _loop(start, dim(m, 1), [m], lambda j, c: [fn(c[0], j)])[0]


def _row_update(m: ir.Value, i: ir.Value, start: ir.Value, fn) -> ir.Value:
    """Row i of m replaced: m[i, j] = fn(m, j)."""
    return _each_column(m, start, lambda c, j: _put(fn(c, j), c, i, j))


def _swap_rows(m: ir.Value, k: ir.Value, p: ir.Value) -> ir.Value:
    def swap(c, j):
        a, b = _at(c, k, j), _at(c, p, j)
        return _put(a, _put(b, c, k, j), p, j)
    return _each_column(m, index_const(0), swap)


def _axpy_row(m: ir.Value, i: ir.Value, k: ir.Value, f: ir.Value, start: ir.Value) -> ir.Value:
    """Row i -= f * row k."""
    return _row_update(m, i, start, lambda c, j: arith.subf(_at(c, i, j), arith.mulf(f, _at(c, k, j))))


def _pivot(a: ir.Value, k: ir.Value, n: ir.Value) -> ir.Value:
    """The row p >= k with the largest |a[p, k]| (partial pivoting)."""
    def better(i, c):
        v = mlir_math.absf(_at(a, i, k))
        gt = arith.cmpf(arith.CmpFPredicate.OGT, v, c[1])
        return [arith.select(gt, i, c[0]), arith.select(gt, v, c[1])]
    start = arith.addi(k, index_const(1))
    return _loop(start, n, [k, mlir_math.absf(_at(a, k, k))], better)[0]


def _is_zero(v: ir.Value) -> ir.Value:
    return arith.cmpf(arith.CmpFPredicate.OEQ, v, arith.constant(v.type, 0.0))


def _square_size(fe, values: list[ir.Value]) -> ir.Value:
    """The matrix's order n; operands whose dims disagree set SHAPE_MISMATCH and the
    loops run to the smallest (every access stays inside every operand)."""
    a = values[0]
    sizes = [dim(a, 0), dim(a, 1)] + [dim(v, 0) for v in values[1:]]
    n = sizes[0]
    for other in sizes[1:]:
        fe.check(arith.cmpi(arith.CmpIPredicate.eq, sizes[0], other), st.SHAPE_MISMATCH)
        n = index_min(n, other)
    return n


def _gauss_jordan(a: ir.Value, b: ir.Value, n: ir.Value) -> tuple[ir.Value, ir.Value]:
    """inv(a) @ b over the leading n x n block, and whether a pivot was 0 (singular)."""
    zero_i = index_const(0)
    false = arith.constant(ir.IntegerType.get_signless(1), 0)

    def step(k, c):
        a, b, bad = c
        p = _pivot(a, k, n)
        a, b = _swap_rows(a, k, p), _swap_rows(b, k, p)
        pivot = _at(a, k, k)
        bad = arith.ori(bad, _is_zero(pivot))
        scale = arith.divf(arith.constant(pivot.type, 1.0), pivot)
        a = _row_update(a, k, zero_i, lambda m, j: arith.mulf(_at(m, k, j), scale))
        b = _row_update(b, k, zero_i, lambda m, j: arith.mulf(_at(m, k, j), scale))

        def eliminate(i, c):
            f = arith.select(arith.cmpi(arith.CmpIPredicate.eq, i, k), arith.constant(pivot.type, 0.0),
                             _at(c[0], i, k))
            return [_axpy_row(c[0], i, k, f, zero_i), _axpy_row(c[1], i, k, f, zero_i)]
        a, b = _loop(zero_i, n, [a, b], eliminate)
        return [a, b, bad]

    _, x, bad = _loop(zero_i, n, [a, b, false], step)
    return x, bad


def _identity(size: ir.Value, n: ir.Value, t: TensorType) -> ir.Value:
    """size x size, ones on the first n diagonal entries."""
    elem = element_type(t.dtype)
    m = fill(arith.constant(elem, 0.0), empty([size, size], t))
    return _loop(index_const(0), n, [m], lambda i, c: [_put(arith.constant(elem, 1.0), c[0], i, i)])[0]


@rules.emission(MatrixInverse)
def _emit_inverse(fe, node, values):
    n = _square_size(fe, values)
    x, bad = _gauss_jordan(values[0], _identity(dim(values[0], 0), n, node.outputs[0].type), n)
    fe.check(arith.xori(bad, arith.constant(bad.type, 1)), st.LINALG_ERROR)
    return [x]


@rules.emission(Solve)
def _emit_solve(fe, node, values):
    n = _square_size(fe, values)
    x, bad = _gauss_jordan(values[0], values[1], n)
    fe.check(arith.xori(bad, arith.constant(bad.type, 1)), st.LINALG_ERROR)
    return [x]


@rules.emission(Det)
def _emit_det(fe, node, values):
    n = _square_size(fe, values)
    elem = element_type(node.outputs[0].dtype)
    one = arith.constant(elem, 1.0)

    def step(k, c):
        a, sign = c
        p = _pivot(a, k, n)
        a = _swap_rows(a, k, p)
        sign = arith.select(arith.cmpi(arith.CmpIPredicate.ne, p, k), arith.negf(sign), sign)
        pivot = _at(a, k, k)
        zero = arith.constant(elem, 0.0)

        def eliminate(i, c):
            f = arith.select(_is_zero(pivot), zero, arith.divf(_at(c[0], i, k), pivot))
            return [_axpy_row(c[0], i, k, f, k)]
        a = _loop(arith.addi(k, index_const(1)), n, [a], eliminate)[0]
        return [a, arith.mulf(sign, pivot)]

    # the running product is carried as `sign`: each step multiplies in its pivot
    _, value = _loop(index_const(0), n, [values[0], one], step)
    return [scalar_tensor(value, node.outputs[0].dtype)]


@rules.emission(Cholesky)
def _emit_cholesky(fe, node, values):
    a = values[0]
    n = _square_size(fe, values)
    elem = element_type(node.outputs[0].dtype)
    zero_i = index_const(0)
    lower = fill(arith.constant(elem, 0.0), empty([dim(a, 0), dim(a, 0)], node.outputs[0].type))

    def minus_products(low, i, j, start):
        """a[i, j] - sum_{k < j} L[i, k] L[j, k]."""
        return _loop(zero_i, j, [start], lambda k, c: [
            arith.subf(c[0], arith.mulf(_at(low, i, k), _at(low, j, k)))])[0]

    def column(j, c):
        low, bad = c
        s = minus_products(low, j, j, _at(a, j, j))
        bad = arith.ori(bad, arith.xori(arith.cmpf(arith.CmpFPredicate.OGT, s, arith.constant(elem, 0.0)),
                                        arith.constant(bad.type, 1)))
        d = mlir_math.sqrt(s)
        low = _put(d, low, j, j)
        rows = _loop(arith.addi(j, index_const(1)), n, [low], lambda i, c: [
            _put(arith.divf(minus_products(c[0], i, j, _at(a, i, j)), d), c[0], i, j)])
        return [rows[0], bad]

    low, bad = _loop(zero_i, n, [lower, arith.constant(ir.IntegerType.get_signless(1), 0)], column)
    fe.check(arith.xori(bad, arith.constant(bad.type, 1)), st.LINALG_ERROR)
    return [low]


# ---------------------------------------------------------------- VJPs
@rules.vjp(MatrixInverse)
def _vjp_inverse(node, cots, needed):
    x_inv_t = node.outputs[0].T
    return [-dot(dot(x_inv_t, cots[0]), x_inv_t)]


@rules.vjp(Det)
def _vjp_det(node, cots, needed):
    return [cots[0] * node.outputs[0] * matrix_inverse(node.inputs[0]).T]


@rules.vjp(Solve)
def _vjp_solve(node, cots, needed):
    # Aesara's SolveBase.L_op: b_bar = solve(A.T, g), A_bar = -b_bar x.T
    a, x, g = node.inputs[0], node.outputs[0], cots[0]
    b_bar = solve(a.T, g)
    a_bar = -outer(b_bar, x) if x.ndim == 1 else -dot(b_bar, x.T)
    return [a_bar, b_bar]


@rules.vjp(Cholesky)
def _vjp_cholesky(node, cots, needed):
    # Aesara's Cholesky.L_op (Murray, 2016): s = L^-T Phi(L^T dL) L^-1, with Phi the
    # lower triangle with a halved diagonal; the gradient is tril(s + s^T) - diag(s)
    low, g = node.outputs[0], cots[0]
    below, diagonal = _lower_mask(low), _diagonal_mask(low)
    inner = dot(low.T, g)
    phi = switch(below, inner, 0.0) - switch(diagonal, inner, 0.0) / 2
    s = solve(low.T, solve(low.T, phi.T).T)
    return [switch(below, s + s.T, 0.0) - switch(diagonal, s, 0.0)]


def _lower_mask(m: Variable) -> Variable:
    rows = arange(m.shape[0])
    return ge(dimshuffle(rows, 0, "x"), dimshuffle(rows, "x", 0))


def _diagonal_mask(m: Variable) -> Variable:
    rows = arange(m.shape[0])
    return eq(dimshuffle(rows, 0, "x"), dimshuffle(rows, "x", 0))


# ---------------------------------------------------------------- user functions
__all__ = [  # the user functions scanaot.tensor exports
    "matrix_inverse", "det", "solve", "cholesky",
]


def _float(x: Any) -> Variable:
    """Integer matrices are solved in floats (numpy's rule)."""
    x = as_tensor_variable(x)
    return x if dtypes.is_float(x.dtype) else cast(x, dtypes.upgrade_to_float(x.dtype))


def matrix_inverse(x: Any) -> Variable:
    """inv(x) of a square matrix; a singular x sets LINALG_ERROR (numpy: LinAlgError)."""
    return MatrixInverse()(_float(x))


def det(x: Any) -> Variable:
    """The determinant of a square matrix (0 when singular, as numpy's)."""
    return Det()(_float(x))


def solve(a: Any, b: Any) -> Variable:
    """x with a @ x == b, for a vector or a matrix b; a singular a sets LINALG_ERROR."""
    a, b = _float(a), _float(b)
    dtype = dtypes.upcast(a.dtype, b.dtype)
    return Solve()(cast(a, dtype), cast(b, dtype))


def cholesky(x: Any, lower: bool = True) -> Variable:
    """L (lower) or L.T (upper) with L @ L.T == x; x must be symmetric positive
    definite (only its lower triangle is read), else LINALG_ERROR is set."""
    low = Cholesky()(_float(x))
    return low if lower else low.T
