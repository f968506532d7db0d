"""Running upstream MLIR passes from their textual pipeline, and the error a failed
pass (or a code generation tool) raises."""
from __future__ import annotations

from mlir import ir
from mlir.passmanager import PassManager


class CompileError(RuntimeError):
    """A pass or a code generation tool failed; the message carries its diagnostics."""


def run_pipeline(module: ir.Module, pipeline: str, stage: str) -> None:
    try:
        pm = PassManager.parse(pipeline)
        pm.run(module.operation)
    except ir.MLIRError as err:  # pragma: no cover - reached only on compiler bugs
        raise CompileError(f"stage {stage}: {err}") from None
