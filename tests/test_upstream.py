"""passes/upstream.py: pipelines run with the GIL released, a failed one raises
CompileError carrying the passes' errors (from any thread), warnings stay unhandled."""
import threading
import time

import pytest
from mlir import ir

from scanaot.passes.upstream import CompileError, run_pipeline

UNBUFFERIZABLE = ('func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {\n'
                  '  %y = "foo.bar"(%a) : (tensor<4xf32>) -> tensor<4xf32>\n'
                  '  return %y : tensor<4xf32>\n}')
BUFFERIZE = "builtin.module(one-shot-bufferize{bufferize-function-boundaries=1})"


def _module(text: str, context: ir.Context) -> ir.Module:
    with context, ir.Location.unknown():
        return ir.Module.parse(text)


def _unregistered_context() -> ir.Context:
    context = ir.Context()
    context.allow_unregistered_dialects = True
    return context


def _chain(n: int) -> str:
    """A function of n dependent additions: canonicalize and cse walk every one."""
    body = "\n".join(f"  %v{i} = arith.addi %v{i - 1}, %c : index" for i in range(1, n))
    return f"func.func @f(%c: index) -> index {{\n  %v0 = arith.addi %c, %c : index\n{body}\n  return %v{n - 1} : index\n}}"


@pytest.mark.parametrize("in_thread", [False, True], ids=["caller", "worker thread"])
def test_a_failed_pipeline_raises_compile_error_with_the_passes_errors(in_thread):
    module = _module(UNBUFFERIZABLE, _unregistered_context())
    raised = []

    def run():
        with pytest.raises(CompileError) as info:
            run_pipeline(module, BUFFERIZE, "memref")
        raised.append(str(info.value))

    if in_thread:
        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
    else:
        run()
    message, = raised
    assert message.startswith("stage memref: failure while executing pass pipeline")
    assert "error: " in message and "op was not bufferized" in message
    assert 'note: ' in message and '"foo.bar"' in message  # the error's notes come with it


def test_the_handler_is_detached_after_a_run():
    """A later run in the same context reports only its own errors."""
    context = _unregistered_context()
    with pytest.raises(CompileError):
        run_pipeline(_module(UNBUFFERIZABLE, context), BUFFERIZE, "memref")
    ok = _module("func.func @g(%a: index) -> index { return %a : index }", context)
    run_pipeline(ok, "builtin.module(canonicalize)", "scf")
    with pytest.raises(CompileError) as info:
        run_pipeline(_module(UNBUFFERIZABLE.replace("@f", "@h"), context), BUFFERIZE, "memref")
    assert str(info.value).count("op was not bufferized") == 1


def test_a_pipeline_runs_with_the_gil_released():
    """A Python thread keeps running while a pipeline runs (the bindings' PassManager.run
    holds the GIL: the CPU variants' back ends could not overlap): the longest pause
    between its ticks is a small part of the run."""
    module = _module(_chain(60_000), ir.Context())
    ticks: list[float] = []
    running, stop = threading.Event(), threading.Event()

    def tick():
        running.set()
        while not stop.is_set():
            ticks.append(time.perf_counter())

    ticker = threading.Thread(target=tick)
    ticker.start()
    running.wait()
    start = time.perf_counter()
    run_pipeline(module, "builtin.module(canonicalize,cse)", "scf")
    end = time.perf_counter()
    stop.set()
    ticker.join()
    during = [t for t in ticks if start <= t <= end]
    pauses = [b - a for a, b in zip([start, *during], [*during, end])]
    assert end - start > 0.02 and max(pauses) < 0.5 * (end - start)
    assert str(module).count("arith.addi") == 60_000  # the chain stays (nothing folds)


def test_a_missing_c_api_library_is_a_compile_error_naming_it(tmp_path, monkeypatch):
    import mlir._mlir_libs

    from scanaot.passes import upstream
    upstream._capi.cache_clear()
    monkeypatch.setattr(mlir._mlir_libs, "__file__", str(tmp_path / "__init__.py"))
    try:
        with pytest.raises(CompileError, match="libMLIRPythonCAPI.so could not be loaded"):
            run_pipeline(_module(_chain(3), ir.Context()), "builtin.module(canonicalize)", "scf")
    finally:
        monkeypatch.undo()
        upstream._capi.cache_clear()
    run_pipeline(_module(_chain(3), ir.Context()), "builtin.module(canonicalize)", "scf")
