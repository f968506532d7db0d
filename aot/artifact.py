"""`scanaot.compile`: traced functions -> a sealed `.so` with its manifest, and a C header.

Build: emit every function into one module, run the pipeline, add the manifest
and digest sections, generate code with LLVM's tools (codegen.py), seal the
digest. Builds are cached by a hash of the emitted scan-dialect IR, the target
and the toolchain; a cache hit runs no MLIR pass and no LLVM tool.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .graph import Constant, Variable, free_inputs
from .runtime import manifest as manifest_mod
from .runtime.schema import MAX_EXPRESSION_DEPTH
from .shape_expr import ExprBuilder, NotExpressible, depth, render
from .symbols import c_interface, entry_symbol, kernel_symbol

_context_lock = threading.Lock()
TARGETS = ("cpu", "cuda")


@dataclass
class FunctionSpec:
    """One function of a library: its name, inputs and outputs (and, for a gradient
    kernel, the function it differentiates and the names of `grad_wrt`)."""
    name: str
    inputs: list[Variable]
    outputs: list[Variable]
    unpack: bool = False
    forward: "FunctionSpec | None" = None
    wrt: list[str] = field(default_factory=list)


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
    from .cache import write_atomic
    from .header import generate_header
    write_atomic(lib_path, built.data, mode=0o755)
    write_atomic(header_path, generate_header(name, built.manifest).encode(), mode=0o644)
    return Artifact(lib_path, header_path, built.manifest, built.stages)


def _check_depth(function: str, j: int, out: Variable, shape: list[dict]) -> None:
    """The runtime reads shape expressions up to MAX_EXPRESSION_DEPTH levels: refuse a
    deeper one here, naming the output, rather than build a library no runtime loads."""
    deepest = max((depth(e) for e in shape), default=0)
    if deepest > MAX_EXPRESSION_DEPTH:
        raise ValueError(f"{function}: the shape of output {j} ({out.describe()}) is an expression "
                         f"{deepest} levels deep; libraries support at most {MAX_EXPRESSION_DEPTH} "
                         "(compute n_steps or the sizes with fewer chained scalar ops)")


def make_spec(name: str, inputs: Sequence[Variable], outputs: Any) -> FunctionSpec:
    _check_name(name, "function name")
    if isinstance(inputs, Variable) or not isinstance(inputs, (list, tuple)):
        raise TypeError(f"{name}: inputs must be a list of variables")
    seen: set[Variable] = set()
    for i, v in enumerate(inputs):
        if not isinstance(v, Variable) or isinstance(v, Constant):
            raise TypeError(f"{name}: inputs[{i}] must be a symbolic input variable, got {v!r}")
        if v.owner is not None:
            raise TypeError(f"{name}: inputs[{i}] ({v.describe()}) is computed from other variables; "
                            "inputs must be variables made with at.scalar(), at.vector(), ...")
        if v in seen:
            raise ValueError(f"{name}: inputs[{i}] ({v.describe()}) is listed twice")
        seen.add(v)
    unpack = not isinstance(outputs, (list, tuple))
    outs = [outputs] if unpack else list(outputs)
    if not outs:
        raise ValueError(f"{name}: needs at least one output")
    for i, o in enumerate(outs):
        if not isinstance(o, Variable):
            raise TypeError(f"{name}: outputs[{i}] must be a symbolic variable, got {type(o).__name__}")
    missing = [v for v in free_inputs(outs) if v not in seen]
    if missing:
        raise ValueError(f"{name}: the outputs depend on {missing[0].describe()}, which is not among "
                         "the inputs; add it to the inputs list")
    from .runtime.library import MAX_PARAMETERS
    if len(inputs) + len(outs) + 1 > MAX_PARAMETERS:
        raise ValueError(f"{name}: {len(inputs)} inputs and {len(outs)} outputs; a function takes at most "
                         f"{MAX_PARAMETERS - 1} together (pass stacked arrays instead of many scalars)")
    return FunctionSpec(name, list(inputs), outs, unpack)


def vjp_spec(spec: FunctionSpec, grad_wrt: Sequence[Variable]) -> FunctionSpec:
    """The gradient kernel of `spec`: (inputs..., cotangents...) -> grads in `grad_wrt` order."""
    from . import basic
    from .autodiff import differentiable, vjp

    wrt = [grad_wrt] if isinstance(grad_wrt, Variable) else list(grad_wrt)
    for i, w in enumerate(wrt):
        if w not in spec.inputs:
            raise ValueError(f"{spec.name}: grad_wrt[{i}] ({w!r}) is not one of the inputs")
        if not differentiable(w):
            raise TypeError(f"{spec.name}: grad_wrt[{i}] ({w.describe()}) is not a float input")
    names = arg_names(spec.inputs)
    out_names = arg_names(spec.outputs, "out", names)
    cotangents, cot_vars = [], []
    for j, out in enumerate(spec.outputs):
        if differentiable(out):
            cot = out.type(name=f"cot_{out_names[j]}")
            cotangents.append(cot)
            cot_vars.append(cot)
        else:
            cotangents.append(None)
    grads = vjp(spec.outputs, cotangents, wrt)
    grads = [basic.zeros_like(w) if g is None else g for w, g in zip(wrt, grads)]
    for g, w in zip(grads, wrt):
        g.name = f"grad_{names[spec.inputs.index(w)]}"
    kernel = make_spec(f"{spec.name}_vjp", spec.inputs + cot_vars, grads)
    kernel.forward, kernel.wrt = spec, [names[spec.inputs.index(w)] for w in wrt]
    return kernel


_LIBRARY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*")


def _check_name(name: object, what: str) -> str:
    """Library and function names become C symbols (`scanaot_LIBRARY__FUNCTION`):
    ASCII letters, digits and single underscores, starting with a letter, so no two
    (library, function) pairs and no CPU variant can spell the same symbol."""
    if not isinstance(name, str) or len(name) > 100 or _LIBRARY_NAME.fullmatch(name) is None:
        raise ValueError(f"{what} {name!r} must be an ASCII C identifier of at most 100 characters that "
                         "starts with a letter and has no double or trailing underscore")
    return name


def arg_names(inputs: Sequence[Variable], prefix: str = "arg", taken: Sequence[str] = ()) -> list[str]:
    """Argument names: the variables' names where they can name a C parameter in the
    header and a keyword of the runtime's calls (runtime.schema.is_argument_name:
    `lambda` can, `int` and `out` cannot) and are unique, else argN (made unique).
    Outputs are named the same way (`prefix` out, after the arguments' `taken` names)."""
    from .runtime.schema import is_argument_name

    names: list[str] = list(taken)
    for i, v in enumerate(inputs):
        candidate = v.name if is_argument_name(v.name) and v.name not in names else f"{prefix}{i}"
        while candidate in names:
            candidate += "_"
        names.append(candidate)
    return names[len(taken):]


def function_manifest(spec: FunctionSpec, library: str) -> dict:
    names = arg_names(spec.inputs)
    builder = ExprBuilder(spec.inputs)
    args = [{"name": n, "dtype": v.dtype, "ndim": v.ndim,
             "shape": [{"const": 1} if b else {"dim": [i, axis]} for axis, b in enumerate(v.broadcastable)]}
            for i, (n, v) in enumerate(zip(names, spec.inputs))]
    outputs = []
    out_names = arg_names(spec.outputs, "out", names)
    for j, out in enumerate(spec.outputs):
        try:
            shape, bounded = builder.output_shape(out)
        except NotExpressible as err:
            raise ValueError(f"{spec.name}: the shape of output {j} ({out.describe()}) cannot be "
                             f"computed from the arguments before the call: it depends on {err}") from None
        _check_depth(spec.name, j, out, shape)
        outputs.append({"name": out_names[j],
                        "dtype": out.dtype, "ndim": out.ndim, "shape": shape, "bounded": bounded,
                        "shape_text": [render(e, names) for e in shape]})
    # a relation too deep to state is still checked by the kernel itself (a status)
    constraints = [c for c in builder.constraints(spec.outputs)
                   if max(depth(e) for e in c["args"]) <= MAX_EXPRESSION_DEPTH]
    for c in constraints:
        c["text"] = [render(e, names) for e in c["args"]]
    return {"name": spec.name, "symbol": entry_symbol(library, spec.name), "workspace_bytes": 0,
            "args": args, "outputs": outputs, "constraints": constraints,
            "dims_length": max(1, sum(o.ndim for o in spec.outputs))}


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
    from mlir import ir

    from . import cache
    from .codegen import toolchain_id
    from .dialects import scan as scan_dialect
    from .passes.fastmath import check_mode

    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"function names must be unique, got {names}")
    _check_name(library, "library name")
    target_record = _target_record(target, cpu, arch, check_mode(fastmath), default_cpu)
    functions = _function_manifests(specs, library)
    with _context_lock, ir.Context() as ctx, ir.Location.unknown():
        scan_dialect.load(ctx)
        # the least capable variant's IR identifies the graph; the others are emitted from
        # the same graph with their variant's parameters (in the manifest), only on a miss
        first_variant, *other_variants = target_record["variants"]
        first, checks = _emit(specs, first_variant, target)
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
        modules = [first] + [_emit_same_checks(specs, v, target, checks) for v in other_variants]
        stages, variant_ir, dispatch_ir = _lower_all(modules, manifest)
    data = _link(variant_ir, dispatch_ir, manifest)
    return Build(data, cache.store(key, data, stages, manifest), stages, manifest)


def _target_record(target: str, cpu, arch: str | None, fastmath: str, default_cpu: str) -> dict:
    from .codegen import TRIPLE
    from .target_info import variants

    found = variants(cpu, default=default_cpu, cuda=target == "cuda")
    label = cpu if isinstance(cpu, str) else ",".join(cpu) if cpu else (
        found[0]["cpu"] if target == "cuda" else default_cpu)
    record = {"name": target, "triple": TRIPLE, "cpu": label, "variants": found, "fastmath": fastmath}
    if target == "cuda":
        from .passes import to_gpu
        record["arch"] = to_gpu.check_arch(arch or to_gpu.DEFAULT_ARCH)
        record["ptxas"] = to_gpu.ptxas_version()
    elif arch is not None:
        raise ValueError("arch= applies to target='cuda' only; the cpu target takes cpu=")
    return record


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


def _emit(specs: Sequence[FunctionSpec], variant: dict, target: str) -> tuple[Any, dict[str, list[str]]]:
    """One module of the scan dialect, emitted for one CPU variant (its matmul tile), and
    each function's run-time check sites (the manifest's `checks`)."""
    from mlir import ir

    from . import emit_rules
    from .emit import ModuleEmitter, emit_function
    from .target_info import matmul_tile

    rows, row_bytes = matmul_tile(variant["features"]) if target == "cpu" else (0, 0)
    emit_rules.MATMUL_TILE.update(rows=rows, bytes=row_bytes)
    module = ir.Module.create()
    emitter = ModuleEmitter(module)
    for s in specs:
        emitter._names.add(kernel_symbol(s.name))
    checks = {s.name: emit_function(emitter, kernel_symbol(s.name), s.inputs, s.outputs) for s in specs}
    return module, checks


def _emit_same_checks(specs: Sequence[FunctionSpec], variant: dict, target: str, checks: dict):
    """Another variant's module; its check sites must be the first variant's, which the
    manifest (and so the status messages of every variant) records."""
    from .pipeline import CompileError

    module, mine = _emit(specs, variant, target)
    if mine != checks:
        raise CompileError(f"variant {variant['cpu']} emitted other run-time checks than the first variant")
    return module


def _lower_all(modules: list, manifest: dict):
    """Every variant through the pipeline; (stages of the last, [(LLVM IR, llc flags)], dispatch IR)."""
    from .dispatch import dispatch_module, seal_variant
    from .pipeline import lower
    from .target_info import llc_flags

    target = manifest["target"]
    cuda = target["name"] == "cuda"
    entries = {c_interface(f["name"]): f["symbol"] for f in manifest["functions"]}
    variant_ir = []
    for module, variant in zip(modules, target["variants"]):
        stages = lower(module, target["name"], variant["features"], target["fastmath"])
        if cuda:
            _lower_cuda(module, manifest)
        seal_variant(module, entries, None if cuda else variant)
        stages["llvm"] = str(module)
        variant_ir.append((stages["llvm"], llc_flags(variant)))
    arity = {f["symbol"]: len(f["args"]) + len(f["outputs"]) + 1 for f in manifest["functions"]}
    dispatch = dispatch_module(arity, None if cuda else target["variants"],
                               json.dumps(manifest, sort_keys=True), manifest["library"])
    return stages, variant_ir, str(dispatch)


def _lower_cuda(module, manifest: dict) -> None:
    """Device code into the module; which arguments host code reads, into the manifest."""
    from .passes import to_gpu

    target = manifest["target"]
    for f in manifest["functions"]:
        accessed = to_gpu.host_accessed_arguments(module, kernel_symbol(f["name"]))
        for i, a in enumerate(f["args"]):
            a["host_access"] = i in accessed
        for j, o in enumerate(f["outputs"]):
            o["host_access"] = len(f["args"]) + j in accessed
    to_gpu.to_llvm(module, target["arch"])
    target["device_code"] = to_gpu.embed_device_code(module, target["arch"])


def _link(variant_ir: list, dispatch_ir: str, manifest: dict) -> bytes:
    from .codegen import link_library
    from .symbols import manifest_symbol

    library = manifest["library"]
    exports = [f["symbol"] for f in manifest["functions"]]
    exports += [manifest_symbol(library), "scanaot_cpu_features", "scanaot_cpu_feature_names"]
    if manifest["target"]["name"] == "cuda":
        exports.append("scanaot_cuda_*")
    with tempfile.TemporaryDirectory(prefix="scanaot-") as tmp:
        raw = link_library(variant_ir, dispatch_ir, Path(tmp), library=library, exports=exports,
                           cuda=manifest["target"]["name"] == "cuda")
        return manifest_mod.seal(raw.read_bytes())


@functools.lru_cache(maxsize=None)
def compiler_fingerprint() -> str:
    """A hash of scanaot's own sources (Python and the C linked into libraries): a changed
    pass or allocator must not be served stale code from the cache."""
    import scanaot
    import scanaot.dialects
    import scanaot.runtime
    digest = hashlib.sha256(__version__.encode())
    for package in (scanaot, scanaot.dialects, scanaot.runtime):
        root = Path(package.__file__).parent
        for path in sorted([*root.rglob("*.py"), *root.rglob("*.c")]):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
