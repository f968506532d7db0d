"""`scanaot.compile`: traced functions -> a sealed `.so` with its manifest, and a C header.

Build: emit every function into one module, run the pipeline, add the manifest
and digest sections, generate code with LLVM's tools (targets/toolchain.py), seal the
digest. Builds are cached by a hash of the emitted scan-dialect IR, the target
and the toolchain; a cache hit runs no MLIR pass and no LLVM tool.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from mlir import ir

from .. import __version__, cache
from ..dialects import scan as scan_dialect
from ..emit.function import ModuleEmitter, emit_function
from ..graph.basic import Variable
from ..passes.fastmath import check_mode
from ..passes.upstream import CompileError
from ..runtime import manifest as manifest_mod
from ..targets import get as get_target
from ..targets.dispatch import dispatch_module, seal_variant
from ..targets.cpu_features import llc_flags
from ..targets.pipeline import lower
from ..targets.symbols import c_interface, kernel_symbol, manifest_symbol
from ..targets.toolchain import TRIPLE, link_library, toolchain_id
from .header import generate_header
from .manifest import FunctionSpec, check_name, function_manifest, make_spec, vjp_spec

_context_lock = threading.Lock()


@dataclass
class Artifact:
    """What `compile` wrote: the library, its header, and what is inside."""
    library: Path
    header: Path
    manifest: dict
    stages: dict[str, str] = field(default_factory=dict)

    def ir(self, stage: str = "scan") -> str:
        if stage not in self.stages:
            raise KeyError(f"unknown stage {stage!r}; expected one of {', '.join(self.stages)}")
        return self.stages[stage]


def compile(inputs: Sequence[Variable], outputs: Any, *, name: str, target: str = "cpu",  # noqa: A001
            out_dir: str | os.PathLike = "build", grad_wrt: Sequence[Variable] = (),
            cpu: str | Sequence[str] | None = None, arch: str | None = None,
            fastmath: str | bool = "none") -> Artifact:
    """Compile one function into `out_dir/lib{name}.so` and `out_dir/{name}.h`.

    With `grad_wrt` (some of the inputs), the library also exports `{name}_vjp`:
    the inputs and one cotangent per float output in, the gradients of
    sum(outputs * cotangents) with respect to `grad_wrt` out, in that order.

    `target` is "cpu" or "cuda" (`arch`: the GPU architecture, default sm_90; see
    docs/cuda.md). `cpu`: what the machine code may assume (docs/deploy.md): the
    default "portable" carries kernels for x86-64-v2, v3 and v4 and runs the best
    one the loading CPU has; "native" only runs on CPUs with all the build host's
    features; or one level ("x86-64-v3") or a list of levels. `fastmath`:
    "none" (exact, the default), "contract" (fused multiply-add) or "fast" (every
    fast-math freedom); see docs/function.md.
    """
    return compile_many([(name, inputs, outputs, grad_wrt)], name=name, target=target,
                        out_dir=out_dir, cpu=cpu, arch=arch, fastmath=fastmath)


def compile_many(functions: Sequence[tuple], *, name: str, target: str = "cpu",
                 out_dir: str | os.PathLike = "build", cpu: str | Sequence[str] | None = None,
                 arch: str | None = None, fastmath: str | bool = "none") -> Artifact:
    """Several functions `(name, inputs, outputs)` or `(name, inputs, outputs, grad_wrt)`
    in one library `lib{name}.so`."""
    specs = []
    for entry in functions:
        if len(entry) not in (3, 4):
            raise TypeError("each function is (name, inputs, outputs) or (name, inputs, outputs, grad_wrt)")
        spec = make_spec(*entry[:3])
        specs.append(spec)
        if len(entry) == 4 and entry[3]:
            specs.append(vjp_spec(spec, entry[3]))
    built = build(specs, target=target, cpu=cpu, arch=arch, fastmath=fastmath, library=name)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    lib_path, header_path = out / f"lib{name}.so", out / f"{name}.h"
    cache.write_atomic(lib_path, built.data, mode=0o755)
    cache.write_atomic(header_path, generate_header(name, built.manifest).encode(), mode=0o644)
    return Artifact(lib_path, header_path, built.manifest, built.stages)


@dataclass
class Build:
    """A built library: its sealed bytes (verified), where the cache keeps them, its IR
    stages (of the most capable CPU variant) and its manifest."""
    data: bytes
    path: Path
    stages: dict[str, str]
    manifest: dict


def build(specs: Sequence[FunctionSpec], *, target: str = "cpu", cpu: str | Sequence[str] | None = None,
          arch: str | None = None, fastmath: str | bool = "none", library: str = "main",
          default_cpu: str = "portable") -> Build:
    """Build (or take from the verified cache) the library holding these functions."""
    target_module = get_target(target)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"function names must be unique, got {names}")
    check_name(library, "library name")
    target_record = {"name": target, "triple": TRIPLE, "fastmath": check_mode(fastmath),
                     **target_module.record(cpu, arch, default_cpu)}
    functions = _function_manifests(specs, library)
    with _context_lock, ir.Context() as ctx, ir.Location.unknown():
        scan_dialect.load(ctx)
        # the least capable variant's IR identifies the graph; the others are emitted from
        # the same graph with their variant's parameters (in the manifest), only on a miss
        first_variant, *other_variants = target_record["variants"]
        first, checks = _emit(specs, first_variant, target_module)
        graph_hash = hashlib.sha256(str(first).encode()).hexdigest()
        for f in functions:
            f["graph_hash"], f["checks"] = graph_hash, checks[f["name"]]
        manifest = {"format": manifest_mod.FORMAT, "abi_version": manifest_mod.ABI_VERSION,
                    "library": library, "target": target_record,
                    "compiler": {"scanaot": __version__, "toolchain": toolchain_id()},
                    "functions": functions}
        key = hashlib.sha256("\n".join([graph_hash, toolchain_id(), compiler_fingerprint(),
                                        json.dumps(manifest, sort_keys=True)]).encode()).hexdigest()[:32]
        hit = cache.lookup(key, manifest)
        if hit is not None:
            return Build(hit[0], cache.cache_dir() / f"{key}.so", hit[1], manifest)
        modules = [first] + [_emit_same_checks(specs, v, target_module, checks) for v in other_variants]
        stages, variant_ir, dispatch_ir = _lower_all(modules, manifest, target_module)
    data = _link(variant_ir, dispatch_ir, manifest, target_module)
    return Build(data, cache.store(key, data, stages, manifest), stages, manifest)


def _function_manifests(specs: Sequence[FunctionSpec], library: str) -> list[dict]:
    functions = [function_manifest(s, library) for s in specs]
    by_name = {f["name"]: f for f in functions}
    for s in specs:
        if s.forward is not None:
            vjp_args = by_name[s.name]["args"]
            by_name[s.forward.name]["vjp"] = {
                "function": s.name, "wrt": s.wrt,
                "cotangents": [a["name"] for a in vjp_args[len(s.forward.inputs):]]}
    return functions


def _emit(specs: Sequence[FunctionSpec], variant: dict, target: ModuleType) -> tuple[Any, dict[str, list[str]]]:
    """One module of the scan dialect, emitted for one CPU variant (its matmul tile), and
    each function's run-time check sites (the manifest's `checks`)."""
    module = ir.Module.create()
    emitter = ModuleEmitter(module, matmul_tile=target.matmul_tile(variant))
    for s in specs:
        emitter._names.add(kernel_symbol(s.name))
    checks = {s.name: emit_function(emitter, kernel_symbol(s.name), s.inputs, s.outputs) for s in specs}
    return module, checks


def _emit_same_checks(specs: Sequence[FunctionSpec], variant: dict, target: ModuleType, checks: dict):
    """Another variant's module; its check sites must be the first variant's, which the
    manifest (and so the status messages of every variant) records."""
    module, mine = _emit(specs, variant, target)
    if mine != checks:
        raise CompileError(f"variant {variant['cpu']} emitted other run-time checks than the first variant")
    return module


def _lower_all(modules: list, manifest: dict, target: ModuleType):
    """Every variant through the pipeline; (stages of the last, [(LLVM IR, llc flags)], dispatch IR)."""
    record = manifest["target"]
    entries = {c_interface(f["name"]): f["symbol"] for f in manifest["functions"]}
    variant_ir = []
    for module, variant in zip(modules, record["variants"]):
        stages = lower(module, target, variant, record["fastmath"], manifest)
        seal_variant(module, entries, variant if target.DISPATCH_BY_CPU else None)
        stages["llvm"] = str(module)
        variant_ir.append((stages["llvm"], llc_flags(variant)))
    arity = {f["symbol"]: len(f["args"]) + len(f["outputs"]) + 1 for f in manifest["functions"]}
    dispatch = dispatch_module(arity, record["variants"] if target.DISPATCH_BY_CPU else None,
                               json.dumps(manifest, sort_keys=True), manifest["library"])
    return stages, variant_ir, str(dispatch)


def _link(variant_ir: list, dispatch_ir: str, manifest: dict, target: ModuleType) -> bytes:
    library = manifest["library"]
    exports = [f["symbol"] for f in manifest["functions"]]
    exports += [manifest_symbol(library), "scanaot_cpu_features", "scanaot_cpu_feature_names",
                *target.EXTRA_EXPORTS]
    with tempfile.TemporaryDirectory(prefix="scanaot-") as tmp:
        raw = link_library(variant_ir, dispatch_ir, Path(tmp), library=library, exports=exports,
                           runtime_source=target.RUNTIME_SOURCE)
        return manifest_mod.seal(raw.read_bytes())


@functools.lru_cache(maxsize=None)
def compiler_fingerprint() -> str:
    """A hash of scanaot's own sources (Python and the C linked into libraries): a changed
    pass or allocator must not be served stale code from the cache."""
    digest = hashlib.sha256(__version__.encode())
    for root in (Path(__file__).parents[1], Path(scan_dialect.__file__).parent, Path(manifest_mod.__file__).parent):
        for path in sorted([*root.rglob("*.py"), *root.rglob("*.c")]):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
