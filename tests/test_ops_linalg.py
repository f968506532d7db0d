"""Products (ops/linalg.py): dot of every rank pair, tensordot, outer, batched_dot,
matmul and `x @ y` against numpy; bad input; gradients against finite differences;
a matrix recurrence in a scan; a cuda compile."""
import numpy as np
import pytest

import scanaot
import scanaot as aesara
import scanaot.tensor as at
from conftest import assert_close, check_grads, sample
from scanaot.passes.tile_matmuls import PANEL_BYTES
from scanaot.runtime import StatusError


def var(dtype, ndim, name=None, broadcastable=None):
    return at.tensor(dtype, broadcastable=broadcastable or [False] * ndim, name=name)


DOT_SHAPES = [((), (3,)), ((2, 3), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
              ((2, 5, 3), (3,)), ((2, 5, 3), (3, 4)), ((3,), (2, 3, 4)), ((2, 3), (5, 3, 4)),
              ((2, 2, 3), (4, 3, 5)), ((0, 3), (3, 4)), ((2, 0), (0, 4)), ((2, 1, 0), (0, 3))]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_dot_of_every_rank_pair(dtype, rng):
    ins, outs, args = [], [], []
    for xs, ys in DOT_SHAPES:
        x, y = var(dtype, len(xs)), var(dtype, len(ys))
        ins += [x, y]
        outs.append(at.dot(x, y))
        args += [sample(rng, xs, dtype), sample(rng, ys, dtype)]
    got = aesara.function(ins, outs)(*args)
    for r, (xv, yv) in zip(got, zip(args[::2], args[1::2])):
        assert_close(r, np.dot(xv, yv), dtype)


def test_dot_keeps_the_matrix_path_and_upcasts():
    x, y = at.fmatrix(), at.dmatrix()
    assert type(at.dot(x, x).owner.op).__name__ == "Dot"
    assert at.dot(x, y).dtype == "float64"
    assert at.dot(at.ivector(), at.ltensor3()).dtype == "int64"


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_tensordot_outer_batched_dot(dtype, rng):
    a, b, c = var(dtype, 3), var(dtype, 4), var(dtype, 3)
    u, v, m = var(dtype, 1), var(dtype, 1), var(dtype, 2)
    outs = [at.tensordot(a, b, [[1, 2], [3, 2]]), at.tensordot(a, c.dimshuffle(1, 2, 0)), at.tensordot(a, c, 0),
            at.tensordot(a, m.T, [[2], [0]]), at.tensordot(u, v, 1), at.tensordot(u, v, 0),
            at.outer(u, v), at.batched_dot(a, c.dimshuffle(0, 2, 1)), at.batched_dot(a, m),
            at.batched_dot(u, a), at.batched_dot(m, u)]
    av, bv, cv = sample(rng, (2, 3, 4), dtype), sample(rng, (5, 6, 4, 3), dtype), sample(rng, (2, 3, 4), dtype)
    uv, vv, mv = sample(rng, (2,), dtype), sample(rng, (2,), dtype), sample(rng, (2, 4), dtype)
    got = aesara.function([a, b, c, u, v, m], outs)(av, bv, cv, uv, vv, mv)
    ref = [np.tensordot(av, bv, [[1, 2], [3, 2]]), np.tensordot(av, cv.transpose(1, 2, 0)), np.tensordot(av, cv, 0),
           np.tensordot(av, mv.T, [[2], [0]]), np.tensordot(uv, vv, 1), np.tensordot(uv, vv, 0), np.outer(uv, vv),
           np.einsum("nij,njk->nik", av, cv.transpose(0, 2, 1)), np.einsum("nij,nj->ni", av, mv),
           uv[:, None, None] * av, mv * uv[:, None]]
    for r, e in zip(got, ref):
        assert_close(r, e, dtype)


MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3, 4)), ((3,), (2, 3, 4)), ((2, 5, 3), (3,)), ((5, 2, 3), (3, 4)),
                 ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (5, 3, 4)), ((6, 1, 2, 3), (5, 3, 4)),
                 ((0, 2, 3), (0, 3, 4)), ((5, 2, 0), (5, 0, 4))]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_matmul_broadcasts_batch_dims(dtype, rng):
    ins, outs, args = [], [], []
    for xs, ys in MATMUL_SHAPES:
        x = var(dtype, len(xs), broadcastable=[s == 1 for s in xs])
        y = var(dtype, len(ys), broadcastable=[s == 1 for s in ys])
        ins += [x, y]
        outs.append(x @ y if len(outs) % 2 else at.matmul(x, y))
        args += [sample(rng, xs, dtype), sample(rng, ys, dtype)]
    got = aesara.function(ins, outs)(*args)
    for r, (xv, yv) in zip(got, zip(args[::2], args[1::2])):
        assert_close(r, np.matmul(xv, yv), dtype)


def test_rmatmul_and_dtype():
    m = at.dmatrix()
    f = aesara.function([m], [[[1.0, 0.0], [0.0, 1.0]] @ m, at.matmul(m, m, dtype="float32")])
    mv = np.arange(4.0).reshape(2, 2)
    r = f(mv)
    assert_close(r[0], mv)
    assert_close(r[1], (mv @ mv).astype("float32"), "float32")


def test_bad_arguments_are_named():
    x, v, s = at.dtensor3(), at.dvector(), at.dscalar()
    with pytest.raises(ValueError, match="matmul: inputs cannot be scalars"):
        at.matmul(s, v)
    with pytest.raises(ValueError, match="tensordot: axes=4"):
        at.tensordot(x, x, 4)
    with pytest.raises(ValueError, match="tensordot: b axis 3 is out of range"):
        at.tensordot(x, x, [[0], [3]])
    with pytest.raises(ValueError, match="name 2 axes of a but 1 of b"):
        at.tensordot(x, x, [[0, 1], [0]])
    with pytest.raises(ValueError, match="pair of axis lists"):
        at.tensordot(x, x, "ab")
    with pytest.raises(TypeError, match="outer: expected x to be a vector"):
        at.outer(x, v)
    with pytest.raises(TypeError, match="batched_dot: b must have at least one"):
        at.batched_dot(x, s)


def test_mismatched_run_time_dims_set_the_status():
    a, b = at.dtensor3(), at.dtensor3()
    f = aesara.function([a, b], [at.batched_dot(a, b), a @ b])
    with pytest.raises(StatusError, match="incompatible shapes"):
        f(np.ones((2, 3, 4)), np.ones((2, 5, 2)))
    with pytest.raises(StatusError, match="incompatible shapes"):
        f(np.ones((2, 3, 4)), np.ones((3, 4, 2)))


def test_gradients_against_finite_differences(rng):
    a, b, c = at.dtensor3("a"), at.dtensor3("b"), at.tensor("float64", [True, False, False], name="c")
    m, v = at.dmatrix("m"), at.dvector("v")
    cost = (at.tanh(at.dot(a, m)).sum() + at.sin(at.dot(v, b)).sum() + (at.batched_dot(a, b) ** 2).sum()
            + at.cos(at.tensordot(a, b, [[0, 2], [0, 1]])).sum() + (a @ m + c @ m).sum() ** 2 / 50
            + at.outer(v, v).prod() + at.dot(v, at.dot(m, v)))
    shapes = [(2, 3, 4), (2, 4, 3), (1, 3, 4), (4, 4), (4,)]
    check_grads([a, b, c, m, v], cost, [rng.uniform(-0.9, 0.9, s) for s in shapes])


def test_matrix_recurrence_in_a_scan(rng):
    h0, W = at.dmatrix("h0"), at.dtensor3("W")
    hs, _ = scanaot.scan(lambda Wt, h: at.dot(h, Wt) @ Wt, sequences=W, outputs_info=h0)
    f = aesara.function([h0, W], hs)
    h0v, Wv = rng.normal(size=(2, 3)), rng.normal(size=(4, 3, 3)) / 2
    expect, h = [], h0v
    for Wt in Wv:
        h = h @ Wt @ Wt
        expect.append(h)
    assert_close(f(h0v, Wv), np.stack(expect))


# (rows, depth, columns): edges of the register tile and of the 128-row blocks, one
# row, an empty depth, a width past several 32-lane panels
INVARIANT_SHAPES = [(1, 1, 1), (7, 5, 3), (8, 16, 32), (150, 33, 70), (129, 0, 33), (32, 64, 1030)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", INVARIANT_SHAPES, ids=str)
def test_a_non_sequence_right_operand_is_read_in_packed_panels(dtype, shape, rng):
    """A step's `x_t @ W[:k]` and `x_t.T @ W[:m]` with W a non-sequence (its slices are
    hoisted out of the step): each right operand is copied into zero-padded panels
    once per call; the numbers are numpy's at every edge."""
    m, k, n = shape
    x, W = var(dtype, 3, "x"), var(dtype, 2, "W")
    (plain, transposed), _ = scanaot.scan(lambda x_t, W: [at.dot(x_t, W[:k]), at.dot(x_t.T, W[:m])],
                                          sequences=x, non_sequences=W)
    xv, Wv = sample(rng, (3, m, k), dtype), sample(rng, (max(k, m), n), dtype)
    got_plain, got_t = aesara.function([x, W], [plain, transposed])(xv, Wv)
    assert_close(got_plain, np.einsum("tmk,kn->tmn", xv, Wv[:k]), dtype)
    assert_close(got_t, np.einsum("tmk,mn->tkn", xv, Wv[:m]), dtype)


@pytest.mark.parametrize("cpu", ["native", "x86-64-v2"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("depth", [0, 1, 255, 256, 257, 600, 1024], ids=str)
def test_products_deeper_than_one_block_of_terms(dtype, depth, cpu, rng):
    """K runs in blocks of DEPTH_BLOCK terms (the accumulators restart from the partial
    product): a.T @ b and a @ b across the block edges, with rows and columns off the
    tile; at x86-64-v2 (no masked loads) b is read from zero-padded panels."""
    a, b, c = var(dtype, 2, "a"), var(dtype, 2, "b"), var(dtype, 2, "c")
    f = aesara.function([a, b, c], [at.dot(a.T, b), at.dot(c, b)], cpu=cpu)
    if cpu == "x86-64-v2" and depth == 0:
        # the only masked loads left read a tile's partial product (4 rows at SSE, two
        # products) once per block of terms: none in a k loop
        assert f.ir("llvm").count("llvm.intr.masked.load") == 2 * 4
    av, bv, cv = sample(rng, (depth, 19), dtype), sample(rng, (depth, 45), dtype), sample(rng, (13, depth), dtype)
    got_t, got = f(av, bv, cv)
    assert_close(got_t, av.T @ bv, dtype)
    assert_close(got, cv @ bv, dtype)


def test_an_output_nothing_reads_is_not_computed(rng):
    """Of a scan's two collected outputs only one is used: the other is not stored (it
    failed to compile when its product wrote into a buffer kept for it)."""
    x, W = at.dtensor3("x"), at.dmatrix("W")
    (doubled, product), _ = scanaot.scan(lambda x_t, W: [x_t * 2, at.dot(x_t.T, W)], sequences=x, non_sequences=W)
    f = aesara.function([x, W], doubled)
    xv = rng.normal(size=(3, 4, 5))
    assert_close(f(xv, rng.normal(size=(4, 6))), 2 * xv)
    assert "vector.fma" not in f.ir("memref")


def test_the_packed_panels_are_made_once_before_the_loop():
    x, W = at.ftensor3("x"), at.fmatrix("W")
    hs, _ = scanaot.scan(lambda x_t, W: at.dot(x_t, W), sequences=x, non_sequences=W)
    f = aesara.function([x, W], hs, cpu="x86-64-v3")
    memref_ir = f.ir("memref")
    panels = memref_ir.index(f"x{PANEL_BYTES // 4}xf32>")  # float32 columns per panel row
    assert panels < memref_ir.index("scf.for"), "the panels are allocated and filled before the loop"
    assert memref_ir.count("memref.alloc") == memref_ir[:memref_ir.index("scf.for")].count("memref.alloc")


def test_products_compile_for_cuda(tmp_path):
    a, b, m = at.ftensor3("a"), at.ftensor3("b"), at.fmatrix("m")
    outs = [a @ b, at.dot(a, m), at.batched_dot(a, b), at.tensordot(a, b, [[1, 2], [2, 1]])]
    art = scanaot.compile([a, b, m], outs, name="prods", target="cuda", out_dir=tmp_path, grad_wrt=[a])
    assert art.library.exists()


def test_deep_products_in_a_step_run_in_one_block(rng):
    """A step's products keep one k loop (no partial-product reads in every tile): the
    numbers are numpy's at depths past DEPTH_BLOCK too."""
    a, b = at.dtensor3("a"), at.dtensor3("b")
    prods, _ = scanaot.scan(lambda a_t, b_t: at.dot(a_t.T, b_t), sequences=[a, b])
    f = aesara.function([a, b], prods)
    av, bv = rng.normal(size=(2, 600, 9)), rng.normal(size=(2, 600, 35))
    assert_close(f(av, bv), np.einsum("tki,tkj->tij", av, bv))
