"""`scanaot.compile`: traced functions -> a sealed `.so` with its manifest, and a C header.

Build: emit every function into one module, run the pipeline, add the manifest
and digest sections, generate code with LLVM's tools (targets/toolchain.py), seal the
digest. Builds are cached by a structural hash of the traced graphs
(graph/fingerprint.py; the emitted scan-dialect IR where a graph holds something the
fingerprint cannot write down), the target and the toolchain; a cache hit emits no
IR and runs no MLIR pass and no LLVM tool.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator, Sequence

from mlir import ir

from .. import __version__, cache
from ..dialects import scan as scan_dialect
from ..emit.function import ModuleEmitter, emit_function
from ..graph.basic import Variable
from ..graph.fingerprint import fingerprint
from ..graph.shared import SharedVariable
from ..passes.fastmath import check_mode
from ..passes.ir_helpers import bytecode
from ..runtime import manifest as manifest_mod
from ..runtime import safetensors
from ..runtime.schema import is_argument_name
from ..targets import get as get_target
from ..targets.dispatch import dispatch_module, seal_variant
from ..targets.cpu_features import llc_flags
from ..targets.pipeline import lower_variants
from ..targets.symbols import c_interface, kernel_symbol, manifest_symbol, shared_symbol
from ..targets.toolchain import TRIPLE, link_library, toolchain_id, translation_input
from .header import generate_header
from .manifest import FunctionSpec, check_name, function_manifest, make_spec, vjp_spec
from .stages import CONTEXT_LOCK, IRStages


@dataclass
class Artifact:
    """What `compile` wrote: the library, its header, and what is inside."""
    library: Path
    header: Path
    manifest: dict
    stages: IRStages = field(default_factory=IRStages)

    def ir(self, stage: str = "scan") -> str:
        return self.stages[stage]


def compile(inputs: Sequence[Variable], outputs: Any, *, name: str, target: str = "cpu",  # noqa: A001
            out_dir: str | os.PathLike = "build", grad_wrt: Sequence[Variable] = (),
            cpu: str | Sequence[str] | None = None, arch: str | None = None,
            fastmath: str | bool = "none", updates: Any = None) -> Artifact:
    """Compile one function into `out_dir/lib{name}.so` and `out_dir/{name}.h`.

    Shared variables the outputs read are implicit arguments; `updates` (a dict or a
    list of (shared variable, new value) pairs, as `function` takes them; each
    variable's `default_update` is added) become their new values after a call. The
    library ships the shared variables' values at compile time; the runtime keeps
    them in `State`s (`lib.state()`, docs/runtime.md), C programs in
    `scanaot_LIB_state` (docs/c_abi.md). `grad_wrt` may name shared variables.

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
    return compile_many([(name, inputs, outputs, grad_wrt, updates)], name=name, target=target,
                        out_dir=out_dir, cpu=cpu, arch=arch, fastmath=fastmath)


def compile_many(functions: Sequence[tuple], *, name: str, target: str = "cpu",
                 out_dir: str | os.PathLike = "build", cpu: str | Sequence[str] | None = None,
                 arch: str | None = None, fastmath: str | bool = "none") -> Artifact:
    """Several functions in one library `lib{name}.so`, each `(name, inputs, outputs)`,
    `(name, inputs, outputs, grad_wrt)`, `(name, inputs, outputs, grad_wrt, updates)` or a
    dict with the keys name, inputs, outputs and optionally grad_wrt and updates. The
    functions' shared variables are the library's: one value each, shared by all."""
    specs = []
    for entry in functions:
        fn_name, inputs, outputs, grad_wrt, updates = _entry(entry)
        spec = make_spec(fn_name, inputs, outputs, updates)
        specs.append(spec)
        if grad_wrt is not None and (isinstance(grad_wrt, Variable) or len(grad_wrt)):
            specs.append(vjp_spec(spec, grad_wrt))
    built = build(specs, target=target, cpu=cpu, arch=arch, fastmath=fastmath, library=name)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    lib_path, header_path = out / f"lib{name}.so", out / f"{name}.h"
    cache.write_atomic(lib_path, built.data, mode=0o755)
    cache.write_atomic(header_path, generate_header(name, built.manifest).encode(), mode=0o644)
    return Artifact(lib_path, header_path, built.manifest, built.stages)


_ENTRY = "each function is (name, inputs, outputs), (name, inputs, outputs, grad_wrt), " \
         "(name, inputs, outputs, grad_wrt, updates) or a dict with those keys"


def _entry(entry: Any) -> tuple:
    """(name, inputs, outputs, grad_wrt, updates) of one `compile_many` entry."""
    if isinstance(entry, dict):
        unknown = set(entry) - {"name", "inputs", "outputs", "grad_wrt", "updates"}
        if unknown or not {"name", "inputs", "outputs"} <= set(entry):
            raise TypeError(f"{_ENTRY}; got the keys {sorted(entry)}")
        return (entry["name"], entry["inputs"], entry["outputs"], entry.get("grad_wrt"), entry.get("updates"))
    if not isinstance(entry, (tuple, list)) or len(entry) not in (3, 4, 5):
        raise TypeError(_ENTRY)
    return (*entry, *[None] * (5 - len(entry)))


def _library_shared(specs: Sequence[FunctionSpec]) -> list[SharedVariable]:
    """Every shared variable the functions read or update, in order of first use."""
    found: dict[int, SharedVariable] = {}
    for s in specs:
        for v in s.shared + s.updated:
            found.setdefault(id(v), v)
    return list(found.values())


def _shared_names(variables: list[SharedVariable]) -> dict[int, str]:
    """Each variable's name in the library: its own, or `sharedN` when it has none. Names
    spell C struct members and state keys: unique, and C identifiers."""
    names: dict[int, str] = {}
    for v in variables:
        if v.name is None:
            continue
        if not is_argument_name(v.name):
            raise ValueError(f"shared variable {v.describe()}: its name must be a C identifier that is not a "
                             "C keyword, reserved or 'state'/'out'/'self' (the library's state names it)")
        if v.name in names.values():
            raise ValueError(f"two different shared variables are named {v.name!r}; names must be unique in "
                             "a library (rename one)")
        names[id(v)] = v.name
    for i, v in enumerate(x for x in variables if x.name is None):
        candidate = f"shared{i}"
        while candidate in names.values():
            candidate += "_"
        names[id(v)] = candidate
    return names


def _shipped_state(variables: list[SharedVariable], names: dict[int, str], specs: Sequence[FunctionSpec],
                   library: str) -> tuple[list[dict], dict, bytes]:
    """The manifest's `shared` list and `state` record, and the values (safetensors)."""
    blob = safetensors.dumps({names[id(v)]: v.get_value(borrow=True) for v in variables})
    header, start = safetensors.read_header(blob, "state")
    updated = {id(v) for s in specs for v in s.updated}
    entries = []
    for v in variables:
        name = names[id(v)]
        begin, end = header[name]["data_offsets"]
        entries.append({"name": name, "dtype": v.dtype, "ndim": v.ndim, "shape": header[name]["shape"],
                        "broadcastable": list(v.broadcastable), "updated": id(v) in updated,
                        "offset": start + begin, "nbytes": end - begin})
    record = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob), "symbol": state_symbol(library)}
    return entries, record, blob


def state_symbol(library: str) -> str:
    """The exported symbol holding the shipped values (the header's state_new reads it)."""
    return f"scanaot_state_{library}"


@dataclass
class Build:
    """A built library: its sealed bytes (verified), where the cache keeps them, its IR
    stages (of the most capable CPU variant) and its manifest."""
    data: bytes
    path: Path
    stages: IRStages
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
    # a structural hash of the graphs finds a cached build without emitting anything;
    # the fields emission derives (graph_hash, checks) then come from the verified entry,
    # whose sealed manifest records the hash (a swapped entry of another graph is refused)
    graph_key = _graph_fingerprint(specs)
    manifest, blob = _requested_manifest(specs, target_record, library, graph_key)
    if graph_key is not None:
        key = _cache_key(f"graph:{graph_key}", manifest)
        hit = _cached(key, manifest, EMITTED_FIELDS)
        if hit is not None:
            return hit
    with CONTEXT_LOCK, ir.Context() as ctx, ir.Location.unknown():
        scan_dialect.load(ctx)
        # one module for every variant (each tiles its products after the shared front end);
        # its IR identifies the graph
        module, checks = _emit(specs, target_module)
        graph_hash = hashlib.sha256(bytecode(module)).hexdigest()  # a tenth of printing it
        for f in manifest["functions"]:
            f["graph_hash"], f["checks"] = graph_hash, checks[f["name"]]
        if graph_key is None:
            key = _cache_key(f"ir:{graph_hash}", manifest)
            hit = _cached(key, manifest)
            if hit is not None:
                return hit
        stages = IRStages()
        # LLVM's tools run on each variant while the others are lowered (the dispatch
        # module embeds the manifest, which lowering may add to: after the variants)
        data = _link(_lowered(module, manifest, target_module, stages),
                     functools.partial(_dispatch_ir, manifest, target_module, blob), manifest, target_module)
    return Build(data, cache.store(key, data, stages.encoded(), manifest), stages, manifest)


def _requested_manifest(specs: Sequence[FunctionSpec], target_record: dict, library: str,
                        graph_key: str | None) -> tuple[dict, bytes | None]:
    """The manifest as the caller asks for it (no emitted fields yet) and the shipped state."""
    variables = _library_shared(specs)
    shared_names = _shared_names(variables)
    compiler = {"scanaot": __version__, "toolchain": toolchain_id()}
    if graph_key is not None:
        compiler["graph"] = graph_key
    manifest = {"format": manifest_mod.FORMAT, "abi_version": manifest_mod.ABI_VERSION, "library": library,
                "target": target_record, "compiler": compiler,
                "functions": _function_manifests(specs, library, shared_names)}
    blob = None
    if variables:
        manifest["shared"], manifest["state"], blob = _shipped_state(variables, shared_names, specs, library)
    return manifest, blob


def _cached(key: str, manifest: dict, emitted: tuple[str, ...] = ()) -> Build | None:
    hit = cache.lookup(key, manifest, IRStages.decoded, emitted=emitted)
    return None if hit is None else Build(hit[0], cache.cache_dir() / f"{key}.so", hit[1], hit[2])


# what emission adds to each function's manifest entry
EMITTED_FIELDS = ("graph_hash", "checks")


def _cache_key(graph: str, manifest: dict) -> str:
    """The cache key: the graph's identity, the toolchain, scanaot's own sources and the
    manifest as the caller asked for it (emitted fields left out)."""
    requested = dict(manifest, functions=[{k: v for k, v in f.items() if k not in EMITTED_FIELDS}
                                          for f in manifest["functions"]])
    return hashlib.sha256("\n".join([graph, toolchain_id(), compiler_fingerprint(),
                                     json.dumps(requested, sort_keys=True)]).encode()).hexdigest()[:32]


def _graph_fingerprint(specs: Sequence[FunctionSpec]) -> str | None:
    return fingerprint((s.name, s.inputs, s.outputs,
                        (s.unpack, s.forward.name if s.forward else None, s.wrt, s.shared, s.updated, s.n_outputs))
                       for s in specs)


def _function_manifests(specs: Sequence[FunctionSpec], library: str, shared_names: dict[int, str]) -> list[dict]:
    functions = [function_manifest(s, library, shared_names) for s in specs]
    by_name = {f["name"]: f for f in functions}
    for s in specs:
        if s.forward is not None:
            vjp_args = by_name[s.name]["args"]
            by_name[s.forward.name]["vjp"] = {
                "function": s.name, "wrt": s.wrt,
                "cotangents": [a["name"] for a in vjp_args[s.forward.n_inputs:s.n_inputs]]}
    return functions


def _emit(specs: Sequence[FunctionSpec], target: ModuleType) -> tuple[Any, dict[str, list[str]]]:
    """The module of the scan dialect (the same for every CPU variant) and each function's
    run-time check sites (the manifest's `checks`)."""
    module = ir.Module.create()
    emitter = ModuleEmitter(module, tiled_matmuls=target.TILED_MATMULS)
    for s in specs:
        emitter._names.add(kernel_symbol(s.name))
    checks = {s.name: emit_function(emitter, kernel_symbol(s.name), s.inputs, s.outputs) for s in specs}
    return module, checks


def _lowered(module: ir.Module, manifest: dict, target: ModuleType, stages: IRStages
             ) -> Iterator[tuple[str | bytes, list[str]]]:
    """Each variant through the pipeline (and the kernels' shared bodies where
    share-kernels split them): (its LLVM IR, or MLIR bytecode for mlir-translate; llc
    flags), in order; `stages` receives every stage of the last (the most capable)
    variant."""
    record = manifest["target"]
    entries = {c_interface(f["name"]): f["symbol"] for f in manifest["functions"]}
    shared = frozenset(shared_symbol(kernel_symbol(f["name"])) for f in manifest["functions"])
    translated: dict[int, str | bytes] = {}  # id(variant) -> its translation, made in its thread

    def seal_and_translate(lowered: ir.Module, variant: dict) -> None:
        seal_variant(lowered, entries, variant if target.DISPATCH_BY_CPU else None, shared)
        translated[id(variant)] = translation_input(lowered)

    kept: dict = {}
    for variant, _ in lower_variants(module, target, record["variants"], record["fastmath"], manifest, kept,
                                     seal_and_translate):
        yield translated.pop(id(variant)), llc_flags(variant)
    stages.keep(kept)  # while the last variant's tools run


def _dispatch_ir(manifest: dict, target: ModuleType, state: bytes | None) -> str | bytes:
    """The module of entry points binding a variant at load, with the manifest and the state."""
    record = manifest["target"]
    arity = {f["symbol"]: len(f["args"]) + len(f["outputs"]) + 1 for f in manifest["functions"]}
    dispatch = dispatch_module(arity, record["variants"] if target.DISPATCH_BY_CPU else None,
                               json.dumps(manifest, sort_keys=True), manifest["library"],
                               (state_symbol(manifest["library"]), state) if state is not None else None)
    return translation_input(dispatch)


def _link(variant_ir: Iterable[tuple[str | bytes, list[str]]], dispatch_ir: Callable[[], str | bytes], manifest: dict,
          target: ModuleType) -> bytes:
    library = manifest["library"]
    exports = [f["symbol"] for f in manifest["functions"]]
    exports += [manifest_symbol(library), "scanaot_cpu_features", "scanaot_cpu_feature_names",
                *target.EXTRA_EXPORTS]
    if "state" in manifest:
        exports.append(manifest["state"]["symbol"])
    with tempfile.TemporaryDirectory(prefix="scanaot-") as tmp:
        raw = link_library(variant_ir, dispatch_ir, Path(tmp), library=library, exports=exports,
                           runtime_sources=target.RUNTIME_SOURCES)
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
