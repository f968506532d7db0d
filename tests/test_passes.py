"""IR tests of the scan passes: emitted IR in, the pass, the printed IR checked."""
import contextlib
import ctypes
import io

import numpy as np
import pytest
from mlir import ir

import scanaot as aesara
import scanaot.tensor as at
from scanaot.targets import pipeline
from scanaot.packaging.function import record_functions
from scanaot.dialects import scan as scan_dialect
from scanaot.emit.function import emit_program
from scanaot.passes.keep_last import scan_keep_last
from scanaot.passes.lower_scan import lower_scan_to_scf
from scanaot.tools import guide_examples



@pytest.fixture(scope="module", autouse=True)
def _float32(float32_programs):
    """This module's programs are written in float32, as deployed (floatX=float32),
    also those its module-scoped fixtures build."""


@pytest.fixture
def ctx():
    with ir.Context() as context, ir.Location.unknown():
        scan_dialect.load(context)
        yield context


def power_graph():
    A, k = at.vector("A"), at.iscalar("k")
    result, _ = aesara.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
    return [A, k], result


def test_emission_produces_the_chain(ctx):
    inputs, result = power_graph()
    text = str(emit_program("power", inputs, [result[-1]]))
    for op in ('"scan.loop"', '"scan.state"', '"scan.param"', '"scan.output"', '"scan.last"',
               '"scan.status"', "func.func private @scanaot_scan_step"):
        assert op in text
    assert 'keep = "all"' in text


def test_keep_last_marks_state_and_removes_last(ctx):
    inputs, result = power_graph()
    module = emit_program("power", inputs, [result[-1]])
    scan_keep_last(module.operation)
    text = str(module)
    assert 'keep = "last"' in text and 'keep = "all"' not in text
    assert '"scan.last"' not in text
    assert '"scan.output"(%' in text and "-> tensor<?xf32>" in text


def test_keep_last_leaves_outputs_used_whole(ctx):
    inputs, result = power_graph()
    module = emit_program("power", inputs, [result, result[-1]])
    scan_keep_last(module.operation)
    text = str(module)
    assert 'keep = "all"' in text and '"scan.last"' in text


def test_dead_scan_is_erased(ctx):
    # emission only emits what outputs need, so an unread scan is built by hand
    text = """
    func.func private @s(%a: tensor<f32>) -> (tensor<f32>, i32)
    func.func @f(%n: index, %x: tensor<f32>) -> i32 {
      %l = "scan.loop"(%n) {body = @s, go_backwards = false, until = false} : (index) -> !scan.chain
      %l1 = "scan.state"(%l, %x) {keep = "all", taps = array<i64: -1>} : (!scan.chain, tensor<f32>) -> !scan.chain
      %o = "scan.output"(%l1) {index = 0 : i64} : (!scan.chain) -> tensor<?xf32>
      %s = "scan.status"(%l1) : (!scan.chain) -> i32
      return %s : i32
    }"""
    module = ir.Module.parse(text)
    scan_keep_last(module.operation)
    assert "scan." not in str(module).replace("@s(", "")


def test_lower_scan_to_scf_for(ctx):
    inputs, result = power_graph()
    module = emit_program("power", inputs, [result[-1]])
    scan_keep_last(module.operation)
    lower_scan_to_scf(module.operation)
    text = str(module)
    assert "scf.for" in text and "func.call @scanaot_scan_step" in text
    assert '"scan.' not in text
    assert "bufferization.materialize_in_destination" in text  # the state is written in place


def test_lower_until_to_scf_while(ctx):
    s0, m = at.dscalar(), at.dscalar()
    out, _ = aesara.scan(lambda s, m: (s * 2, aesara.scan.utils.until(s * 2 > m)), outputs_info=s0,
                         non_sequences=m, n_steps=100)
    module = emit_program("f", [s0, m], [out])
    lower_scan_to_scf(module.operation)
    text = str(module)
    assert "scf.while" in text and "scf.condition" in text and '"scan.' not in text


def test_multi_tap_last_value_uses_a_ring(ctx):
    x0 = at.dvector()
    out, _ = aesara.scan(lambda a, b: a + b, outputs_info=dict(initial=x0, taps=[-2, -1]), n_steps=5)
    module = emit_program("f", [x0], [out[-1]])
    scan_keep_last(module.operation)
    lower_scan_to_scf(module.operation)
    text = str(module)
    assert "arith.remui" in text and "tensor<2xf64>" in text


def _function_of(example):
    with record_functions() as made, contextlib.redirect_stdout(io.StringIO()):
        guide_examples.EXAMPLES[example]()
    return made[0]


def allocations_inside_loops(memref_ir: str) -> list[str]:
    found = []
    with ir.Context() as context:
        context.allow_unregistered_dialects = True
        module = ir.Module.parse(memref_ir)

        def visit(op):
            if op.name in ("memref.alloc", "memref.alloca", "memref.realloc"):
                parent = op.parent
                while parent is not None and parent.name != "func.func":
                    if parent.name in ("scf.for", "scf.while"):
                        found.append(str(op))
                        break
                    parent = parent.parent
            return ir.WalkResult.ADVANCE
        module.operation.walk(visit)
    return found


@pytest.mark.parametrize("example", sorted(guide_examples.EXAMPLES))
def test_no_heap_allocation_per_step(example):
    f = _function_of(example)
    text = f.ir("memref")
    assert "scf.for" in text or "scf.while" in text
    assert allocations_inside_loops(text) == []


def test_allocation_check_can_fail():
    text = """func.func @f(%n: index) {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      scf.for %i = %c0 to %n step %c1 {
        %a = memref.alloc() : memref<4xf32>
        memref.dealloc %a : memref<4xf32>
      }
      return
    }"""
    assert len(allocations_inside_loops(text)) == 1


def test_every_stage_is_inspectable():
    f = _function_of("power")
    assert pipeline.STAGES == ("scan", "scan-opt", "scf", "memref", "gpu", "llvm")
    assert '"scan.loop"' in f.ir("scan")
    assert 'keep = "last"' in f.ir("scan-opt")
    assert "scf.for" in f.ir("scf")
    assert "memref" in f.ir("memref")
    assert "llvm.func" in f.ir("llvm")
    np.testing.assert_allclose(f(np.arange(3, dtype="float32"), 3), np.arange(3) ** 3)


def test_generated_sequences_are_computed_where_they_are_read():
    n = at.iscalar("n")
    seq = at.arange(n) * 3 + 1
    result, _ = aesara.scan(fn=lambda x, acc: acc + x, sequences=seq,
                            outputs_info=at.as_tensor_variable(np.asarray(0, seq.dtype)))
    f = aesara.function(inputs=[n], outputs=result)
    assert "linalg.index" in f.ir("scan") and "linalg.index" not in f.ir("scf")
    np.testing.assert_array_equal(f(50), np.cumsum(np.arange(50) * 3 + 1))


def _call_with_buffers(f, args, outs):
    """The kernel through its C ABI, with output buffers of the caller's choosing."""
    from scanaot.runtime.memref import descriptor_for
    kernel = f._kernel
    dims = np.zeros(kernel._dims_length, dtype=np.int64)
    descs = [descriptor_for(a) for a in [*args, *outs, dims]]
    return kernel._fn(*[ctypes.byref(d) for d in descs]), dims


def test_results_are_written_in_place_into_exactly_shaped_outputs():
    f = _function_of("triangular")
    memref_ir = f.ir("memref")
    assert "scf.if" in memref_ir and "scf.yield %arg1 : memref<?xi64>" in memref_ir
    want = np.cumsum(np.arange(1000))  # int64: at.arange of ints is int64, as in Aesara
    np.testing.assert_array_equal(f(1000), want)
    # a larger buffer takes the temporary-and-copy path, and a smaller one stays
    # memory-safe with the shape bit set
    big = np.full(1500, -7, "int64")
    status, dims = _call_with_buffers(f, [np.asarray(1000, "int32")], [big])
    assert status == 0 and dims[0] == 1000
    np.testing.assert_array_equal(big[:1000], want)
    assert (big[1000:] == -7).all()
    guarded = np.full(600, -7, "int64")
    small = guarded[:500]
    status, dims = _call_with_buffers(f, [np.asarray(1000, "int32")], [small])
    assert status & 0xFFFF == 2 and dims[0] == 500  # the kind bits; the site is above them
    np.testing.assert_array_equal(small, want[:500])
    assert (guarded[500:] == -7).all()


def test_out_buffers_must_not_overlap_inputs():
    from scanaot import runtime as rt
    x = at.vector("x")
    result, _ = aesara.scan(fn=lambda p: p * 2, outputs_info=x, n_steps=3)
    f = aesara.function(inputs=[x], outputs=result)
    kernel = f._kernel
    buf = np.ones((3, 12), "float32")
    a = buf[1]
    with pytest.raises(rt.ArgumentError, match="overlaps input 0"):
        kernel(a, out=[buf])
    fine = np.empty((3, 12), "float32")
    np.testing.assert_array_equal(kernel(a, out=[fine]), np.stack([a * 2, a * 4, a * 8]))


def test_wide_vectors_only_on_avx512_and_without_libm_calls(tmp_path):
    k, a = at.iscalar("k"), at.vector("a")
    power, _ = aesara.scan(fn=lambda p, a: p * a, outputs_info=at.ones_like(a), non_sequences=a, n_steps=k)
    powers = a ** at.cast(k, a.dtype)      # libm's powf

    def llvm_ir(out, cpu):
        return aesara.compile([a, k], [out], name="f", cpu=cpu, out_dir=tmp_path / cpu).ir("llvm")
    assert '"prefer-vector-width", "512"' in llvm_ir(power[-1], "x86-64-v4")
    assert "prefer-vector-width" not in llvm_ir(power[-1], "x86-64-v3")
    wide = llvm_ir(powers, "x86-64-v4")
    assert "@powf" in wide and "prefer-vector-width" not in wide


def test_fastmath_is_off_by_default_and_flags_every_float_op(tmp_path):
    x, c = at.vector("x"), at.scalar("c")
    out = at.tanh(x * c + 1).sum()
    exact = aesara.function([x, c], out)
    assert "fastmath" not in exact.ir("scan") and exact.manifest["target"]["fastmath"] == "none"
    for mode in ("contract", "fast"):
        f = aesara.function([x, c], out, fastmath=mode)
        assert f.manifest["target"]["fastmath"] == mode
        assert f"fastmath<{mode}>" in f.ir("scan")
        assert "fastmath" in f.ir("llvm")
        xv = np.linspace(-2, 2, 1001, dtype="float32")
        np.testing.assert_allclose(f(xv, np.float32(0.7)), exact(xv, np.float32(0.7)), rtol=1e-5)
    assert aesara.function([x, c], out, fastmath=True).manifest["target"]["fastmath"] == "fast"
    with pytest.raises(ValueError, match="fastmath must be one of"):
        aesara.function([x, c], out, fastmath="fastest")


def _enclosing_ops(ir_text: str, op_name: str) -> list[list[str]]:
    """For each `op_name` op in the module text, the names of the ops around it."""
    from mlir import ir
    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        module = ir.Module.parse(ir_text)
        chains = []

        def visit(op):
            if op.name == op_name:
                chain, parent = [], op.parent
                while parent is not None and parent.name != "func.func":
                    chain.append(parent.name)
                    parent = parent.parent
                chains.append(chain)
            return ir.WalkResult.ADVANCE

        module.operation.walk(visit)
    return chains


def test_a_costly_producer_of_a_matmul_operand_is_computed_once():
    """fold-generator-reads' cost rule: the GRU's reset gate (a sigmoid) feeding
    dot(r * h, U) is materialized by one loop, not recomputed in every column tile
    of the register-tiled matmul."""
    h, U, V = at.dmatrix("h"), at.dmatrix("U"), at.dmatrix("V")  # float64: the sigmoid calls math.exp
    gated = at.dot(at.sigmoid(at.dot(h, V)) * h, U)
    cheap = at.dot(h * 2, U)
    f = aesara.function([h, U, V], [gated, cheap])
    chains = _enclosing_ops(f.ir("memref"), "math.exp")
    assert chains and all(chain[0] == "linalg.generic" for chain in chains), chains
    rng = np.random.default_rng(0)
    hv, Uv, Vv = rng.normal(size=(5, 7)), rng.normal(size=(7, 9)), rng.normal(size=(7, 7))
    got_gated, got_cheap = f(hv, Uv, Vv)
    np.testing.assert_allclose(got_gated, (1 / (1 + np.exp(-(hv @ Vv))) * hv) @ Uv, rtol=1e-12)
    np.testing.assert_allclose(got_cheap, (hv * 2) @ Uv, rtol=1e-12)


def test_a_cheap_producer_read_twice_is_recomputed_in_each_reader():
    """fuse-cheap-producers: the logsumexp over rows reads `a[:, None] + A` for its max
    and for its sum of exponentials; each computes the sum itself (no temporary),
    and the reductions' starting values are filled in the step, not copied in."""
    alpha, A = at.dvector("alpha"), at.dmatrix("A")
    step = lambda a, A: at.logsumexp(a[:, None] + A, axis=0)  # noqa: E731
    out, _ = aesara.scan(step, outputs_info=alpha, non_sequences=A, n_steps=3)
    f = aesara.function([alpha, A], out)
    scf_ir = f.ir("scf")
    loop = scf_ir[scf_ir.index("scf.for"):]
    assert loop.count("linalg.generic") == 3, "max, sum of exponentials, log: the sum is in both reductions"
    memref_loop = f.ir("memref")[f.ir("memref").index("scf.for"):]
    # both reductions start from a fill made in the step (the copies left: the state
    # into its stacked row, a loop, and the result into a caller's buffer of another
    # shape, a call of runtime/cpu_copy.c)
    assert memref_loop.count("linalg.fill") == 2
    assert memref_loop.count("linalg.copy") == 1 and memref_loop.count("memref.copy") == 1
    rng = np.random.default_rng(0)
    av, Av = rng.normal(size=5), rng.normal(size=(5, 5))
    want, a = [], av
    for _ in range(3):
        z = a[:, None] + Av
        a = np.log(np.exp(z - z.max(axis=0)).sum(axis=0)) + z.max(axis=0)
        want.append(a)
    np.testing.assert_allclose(f(av, Av), np.array(want), rtol=1e-12)


def test_ops_named_lists_nested_ops_in_post_order():
    """lower-scan-to-scf lowers the innermost scan.loop first: ops_named lists an op
    after those nested in it."""
    from scanaot.passes.lower_scan import ops_named
    nested = '"t.x"() ({{\n{}\n}}) {{id = {}}} : () -> ()'
    text = "\n".join([
        '"t.a"() ({', nested.format(nested.format("", 2), 1), nested.format("", 3), "}) : () -> ()",
        nested.format("\n".join([nested.format(nested.format("", 6), 5), nested.format("", 7)]), 4)])
    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        module = ir.Module.parse(text)
        walked = []

        def visit(op):
            if op.name == "t.x":
                walked.append(op)
            return ir.WalkResult.ADVANCE

        module.operation.walk(visit)
        ids = [[ir.IntegerAttr(op.attributes["id"]).value for op in ops] for ops in
               (ops_named(module.operation, "t.x"), walked)]
        assert ids[0] == ids[1] == [2, 1, 3, 6, 5, 7, 4]
