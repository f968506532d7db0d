"""tile-matmuls and the front end the CPU variants share (targets/pipeline.lower_variants).

A matrix product is emitted once, as a call tagged `scan.matmul`; every variant of a
portable library lowers a copy of one front end and gets its own register tile. The
tests check that sharing changes no variant's code (each equals its own single-variant
build), that the front end runs once (once per vector width where scan-interchange
applies), and that no placeholder is left."""
import subprocess

import numpy as np
import pytest

import scanaot
import scanaot.tensor as at
from scanaot.packaging import artifact
from scanaot.passes.tile_matmuls import PANEL_BYTES
from scanaot.targets import pipeline


def _rnn_with_products():
    """A step with a product by invariant weights (packed panels) and one by a sequence,
    and a product over the whole sequence (blocks of terms) after the loop."""
    x, W, h0 = at.ftensor3("x"), at.fmatrix("W"), at.fmatrix("h0")
    hs, _ = scanaot.scan(lambda x_t, h, W: at.tanh(at.dot(h, W) + at.dot(x_t, x_t.T)),
                         sequences=x, outputs_info=h0, non_sequences=W)
    return [x, W, h0], [hs, at.dot(hs[:, 0].T, hs[:, 1])]


def _power():
    """An elementwise scan: scan-interchange cuts it into chunks of the vector width."""
    k, a = at.iscalar("k"), at.fvector("A")
    result, _ = scanaot.scan(lambda p, a: p * a, outputs_info=at.ones_like(a), non_sequences=a, n_steps=k)
    return [a, k], result[-1]


@pytest.fixture
def lowered(monkeypatch, tmp_path):
    """Compile (in an empty cache) and return {variant: its LLVM dialect text}, and how
    often the front end ran."""
    def build(graph, cpu):
        found, fronts = {}, []
        original, front = pipeline.lower_variants, pipeline._front_end

        def recording(*args, **kwargs):
            for variant, module in original(*args, **kwargs):
                found[variant["cpu"]] = str(module)
                yield variant, module

        def counting(module, target, variant, stages):
            fronts.append(variant["cpu"])
            return front(module, target, variant, stages)

        with monkeypatch.context() as m:
            m.setattr(artifact, "lower_variants", recording)
            m.setattr(pipeline, "_front_end", counting)
            m.setenv("SCANAOT_CACHE", str(tmp_path / f"cache-{cpu}"))
            inputs, outputs = graph()
            scanaot.compile(inputs, outputs, name="k", out_dir=tmp_path / str(cpu), cpu=cpu)
        return found, fronts
    return build


def test_the_variants_share_one_front_end(lowered):
    found, fronts = lowered(_rnn_with_products, "portable")
    assert sorted(found) == ["x86-64-v2", "x86-64-v3", "x86-64-v4"]
    assert len(fronts) == 1


def test_scan_interchange_gets_a_front_end_per_vector_width(lowered):
    _, fronts = lowered(_power, "portable")
    assert fronts == ["x86-64-v2", "x86-64-v3", "x86-64-v4"]  # 16, 32 and 64-byte chunks


@pytest.mark.parametrize("graph", [_rnn_with_products, _power], ids=["products", "interchanged"])
def test_each_variant_is_the_code_its_own_build_makes(lowered, graph):
    portable, _ = lowered(graph, "portable")
    for cpu in ("x86-64-v2", "x86-64-v3", "x86-64-v4"):
        alone, _ = lowered(graph, cpu)
        assert alone[cpu] == portable[cpu], f"{cpu}: the shared front end changed its code"


def test_a_tile_masks_its_columns_once_and_each_row_once():
    """A product's tile reads b's row and writes its rows under masks of its own (the
    columns left, the rows past the end): in bounds, so no access ANDs in a second
    mask of the same bound: one vector compare for the columns, one per written row."""
    A, B = at.fmatrix("A"), at.fmatrix("B")
    f = scanaot.function([A, B], at.dot(A, B), cpu="x86-64-v4")
    llvm_ir, rows = f.ir("llvm"), f.ir("memref").count("vector.fma")
    assert llvm_ir.count("llvm.intr.masked.store") == rows
    assert len([line for line in llvm_ir.splitlines() if "llvm.icmp" in line and "vector<" in line]) == 1 + rows
    rng = np.random.default_rng(1)
    for m, k, n in ((1, 1, 1), (9, 3, 33), (17, 40, 16), (130, 5, 47)):
        Av, Bv = rng.normal(size=(m, k)).astype("float32"), rng.normal(size=(k, n)).astype("float32")
        np.testing.assert_allclose(f(Av, Bv), Av @ Bv, rtol=1e-5, atol=1e-5)


def test_the_tiles_replace_every_placeholder():
    x, W = at.ftensor3("x"), at.fmatrix("W")
    hs, _ = scanaot.scan(lambda x_t, W: [at.dot(x_t, W), at.dot(2 * x_t, W)], sequences=x, non_sequences=W)
    f = scanaot.function([x, W], hs, cpu="x86-64-v3")
    emitted, tiled = f.ir("scan"), f.ir("memref")
    assert emitted.count("{scan.matmul = {") == 2 and "func.func private @scanaot_matmul" in emitted
    assert f.ir("scf").count("{scan.matmul = {") == 2  # still calls after the front end's passes
    assert "scan.matmul" not in tiled and "scanaot_matmul" not in tiled
    # two products of one tile: one outlined function, 4 rows of accumulators at AVX2
    assert tiled.count("call @scanaot_tile_") == 2 and tiled.count("vector.fma") == 4
    packs = [line for line in tiled.splitlines() if "memref.alloc" in line and f"x{PANEL_BYTES // 4}xf32>" in line]
    assert len(packs) == 1, "both products read one copy of W's panels"
    panels = packs[0].split("=")[0].strip()
    assert tiled.count(f"memref.dealloc {panels} :") == 1, "the panels are freed once"
    rng = np.random.default_rng(0)
    xv, Wv = rng.normal(size=(3, 5, 7)).astype("float32"), rng.normal(size=(7, 20)).astype("float32")
    plain, doubled = f(xv, Wv)
    np.testing.assert_allclose(plain, xv @ Wv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(doubled, (2 * xv) @ Wv, rtol=1e-5, atol=1e-5)


def test_products_of_the_same_tile_call_one_outlined_function():
    """outline-tiles: a step's three products of one shape (a subview row block, an
    allocation, a transposed stack) become calls; the two alike share one function,
    which the library does not export; the numbers are numpy's."""
    x, W, U = at.ftensor3("x"), at.fmatrix("W"), at.fmatrix("U")
    h0 = at.zeros((x.shape[1], U.shape[1]), dtype="float32")
    hs, _ = scanaot.scan(lambda x_t, h, W, U: at.tanh(at.dot(x_t, W) + at.dot(h, U)) + at.dot(h.T, h).sum(),
                         sequences=x, outputs_info=h0, non_sequences=[W, U])
    f = scanaot.function([x, W, U], hs, cpu="x86-64-v4")
    memref_ir = f.ir("memref")
    tiles = [line for line in memref_ir.splitlines() if "func.func private @scanaot_tile_" in line]
    calls = memref_ir.count("call @scanaot_tile_")
    assert calls == 3 and len(tiles) == 2, (calls, tiles)
    assert "scan.tile" not in memref_ir.split("func.func private")[0], "no product left inline"
    exported = subprocess.run(["nm", "-D", "--defined-only", str(f.library_path)], capture_output=True,
                              text=True, check=True).stdout
    assert "scanaot_tile" not in exported
    rng = np.random.default_rng(2)
    for steps, batch, n_in, hidden in ((3, 5, 7, 9), (2, 17, 33, 40)):
        xv = rng.normal(size=(steps, batch, n_in)).astype("float32")
        Wv, Uv = (rng.normal(size=s).astype("float32") * 0.1 for s in ((n_in, hidden), (hidden, hidden)))
        h, want = np.zeros((batch, hidden), "float32"), []
        for x_t in xv:
            h = np.tanh(x_t @ Wv + h @ Uv) + (h.T @ h).sum()
            want.append(h)
        np.testing.assert_allclose(f(xv, Wv, Uv), np.array(want), rtol=2e-4, atol=2e-4)


def test_a_product_left_untiled_is_still_the_product(monkeypatch):
    """The contraction standing for a product until tile-matmuls (zero-filled init, the
    first `depth` terms, packed panels read through their map) is the product itself:
    lowered as a plain linalg loop nest it gives numpy's numbers (a step's product by
    packed weights, a transposed one, one over a sliced depth, a stack of rows)."""
    from scanaot.targets import cpu
    monkeypatch.setattr(cpu, "tile_matmuls", lambda module_op, tile: None)
    x, W, A = at.ftensor3("x"), at.fmatrix("W"), at.fmatrix("A")
    hs, _ = scanaot.scan(lambda x_t, W: [at.dot(x_t, W), at.dot(x_t.T, x_t)], sequences=x, non_sequences=W)
    f = scanaot.function([x, W, A], hs + [at.dot(x, W[:, :3]), at.dot(A.T, W)], cpu="x86-64-v4")
    assert f.ir("memref").count("scan.matmul") == 4
    rng = np.random.default_rng(0)
    xv, Wv, Av = (rng.normal(size=s).astype("float32") for s in ((3, 5, 7), (7, 40), (7, 9)))
    plain, gram, sliced, transposed = f(xv, Wv, Av)
    np.testing.assert_allclose(plain, xv @ Wv, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gram, np.einsum("tmk,tmn->tkn", xv, xv), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sliced, xv @ Wv[:, :3], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(transposed, Av.T @ Wv, rtol=1e-4, atol=1e-4)


def test_the_tile_replaces_the_contractions_zero_fill():
    """tile-matmuls writes every element of the product: the zero fill the contraction
    started from goes with it."""
    A, B = at.fmatrix("A"), at.fmatrix("B")
    f = scanaot.function([A, B], at.dot(A, B), cpu="x86-64-v3")
    assert "linalg.fill" not in f.ir("memref") and f.ir("memref").count("call @scanaot_tile_") == 1
    rng = np.random.default_rng(3)
    Av, Bv = rng.normal(size=(0, 5)).astype("float32"), rng.normal(size=(5, 6)).astype("float32")
    assert f(Av, Bv).shape == (0, 6)
    Av, Bv = rng.normal(size=(4, 0)).astype("float32"), rng.normal(size=(0, 6)).astype("float32")
    np.testing.assert_array_equal(f(Av, Bv), np.zeros((4, 6), "float32"))
