"""A library's entry points, its CPU variants and its sealed manifest, in the LLVM dialect.

Each CPU variant of a cpu library is lowered from its own module; `seal_variant`
renames its entry points `_mlir_ciface_NAME{suffix}` and makes every other
definition internal, so variants link side by side and nothing but the entry
points can be bound from outside. `dispatch_module` builds the small module
compiled for baseline x86-64 that holds, per function, a GNU ifunc whose
resolver (run once, when the library is loaded) calls `scanaot_cpu_features()`
(runtime/cpu_features.c) and returns the most capable variant this CPU can run,
or `scanaot_cpu_unsupported` (a status, never a SIGILL); the exported entry
point `_mlir_ciface_NAME`, which calls it with a recovery point for failed
allocations; and the manifest and digest placeholder in their own sections.
"""
from __future__ import annotations

from typing import Sequence

from mlir import ir
from mlir.dialects import llvm

from .passes.lower_scan import ops_named
from .runtime import manifest as manifest_mod
from .runtime.cpu import mask
from .runtime.status import BAD_ALLOC
from .runtime.elf import DIGEST_SECTION, MANIFEST_SECTION

ENTRY_PREFIX = "_mlir_ciface_"
_INTERNAL = "#llvm.linkage<internal>"


def entry_symbol(function: str, suffix: str = "") -> str:
    return f"{ENTRY_PREFIX}{function}{suffix}"


def seal_variant(module: ir.Module, functions: Sequence[str], variant: dict | None) -> None:
    """Entry points renamed with the variant's suffix (none without a variant); all
    other definitions internal; the variant's tuning CPU on every function."""
    entries = {entry_symbol(f) for f in functions}
    suffix = variant["suffix"] if variant else ""
    for op in ops_named(module.operation, "llvm.func") + ops_named(module.operation, "llvm.mlir.global"):
        name = ir.StringAttr(op.attributes["sym_name"]).value
        defined = op.name == "llvm.mlir.global" or bool(op.regions[0].blocks)
        if not defined:
            continue
        if name in entries:
            if suffix:
                ir.SymbolTable.replace_all_symbol_uses(name, name + suffix, module.operation)
                op.attributes["sym_name"] = ir.StringAttr.get(name + suffix)
        elif "section" not in op.attributes:
            op.attributes["linkage"] = ir.Attribute.parse(_INTERNAL)
        if variant and variant.get("tune") and op.name == "llvm.func":
            op.attributes["tune_cpu"] = ir.StringAttr.get(variant["tune"])


def manifest_symbol(library: str) -> str:
    """The exported symbol of the manifest: one per library, so several link into one program."""
    return f"scanaot_manifest_{library}"


def dispatch_module(functions: dict[str, int], variants: Sequence[dict] | None, manifest_json: str,
                    library: str) -> ir.Module:
    """The guarded entry points, resolvers and ifuncs (when `variants` is given) and the
    manifest sections. `functions`: name -> number of pointer parameters."""
    module = ir.Module.create()
    with ir.InsertionPoint(module.body):
        if variants:
            i32, ptr = ir.IntegerType.get_signless(32), llvm.PointerType.get()
            _declare("scanaot_cpu_features", ir.IntegerType.get_signless(64))
            _declare("scanaot_cpu_unsupported", i32)
            _declare("scanaot_guard_enter", ptr)
            _declare("scanaot_guard_leave", llvm.PointerType.get())
            llvm.LLVMFuncOp("_setjmp", ir.TypeAttr.get(ir.Type.parse("!llvm.func<i32 (ptr)>")),
                            passthrough=ir.ArrayAttr.get([ir.StringAttr.get("returns_twice")]))
            for function, arity in functions.items():
                _ifunc(function, arity, variants)
                _guarded_entry(function, arity)
        _add_sections(manifest_json, manifest_symbol(library))
    return module


def _function_type(result: ir.Type) -> ir.Type:
    """!llvm.func<result ()>: the bindings have no builder for LLVM function types."""
    return ir.Type.parse(f"!llvm.func<{result} ()>")


def _declare(name: str, result: ir.Type) -> None:
    llvm.LLVMFuncOp(name, ir.TypeAttr.get(_function_type(result)))


def _entry_type(arity: int) -> ir.Type:
    """An entry point's type: `arity` descriptor pointers in, the status out."""
    return ir.Type.parse(f"!llvm.func<i32 ({', '.join(['ptr'] * arity)})>")


def _ifunc(function: str, arity: int, variants: Sequence[dict]) -> None:
    """An internal ifunc bound at load time to the best variant this CPU runs."""
    ptr = llvm.PointerType.get()
    i64 = ir.IntegerType.get_signless(64)
    for v in variants:
        _declare(entry_symbol(function, v["suffix"]), ir.IntegerType.get_signless(32))
    resolver = f"scanaot_resolve_{function}"
    fn = llvm.LLVMFuncOp(resolver, ir.TypeAttr.get(_function_type(ptr)),
                         linkage=ir.Attribute.parse(_INTERNAL))
    with ir.InsertionPoint(fn.body.blocks.append()):
        have = llvm.CallOp(i64, [], [], [], callee="scanaot_cpu_features").result
        chosen = llvm.AddressOfOp(ptr, "scanaot_cpu_unsupported").result
        for v in variants:  # least capable first: later variants win
            need = llvm.ConstantOp(i64, ir.IntegerAttr.get(i64, mask(v["features"]))).result
            present = llvm.AndOp(have, need).result
            ok = llvm.ICmpOp(llvm.ICmpPredicate.eq, present, need).result
            chosen = llvm.SelectOp(ok, llvm.AddressOfOp(ptr, entry_symbol(function, v["suffix"])).result,
                                   chosen).result
        llvm.ReturnOp(arg=chosen)
    llvm.IFuncOp(_selected(function), ir.TypeAttr.get(_entry_type(arity)), ir.FlatSymbolRefAttr.get(resolver),
                 ir.TypeAttr.get(ptr), ir.Attribute.parse(_INTERNAL))


def _selected(function: str) -> str:
    return f"scanaot_selected_{function}"


def _guarded_entry(function: str, arity: int) -> None:
    """`_mlir_ciface_NAME`: the selected variant, called with a recovery point set.

    The library's allocator (runtime/cpu_alloc.c) returns there when memory for a
    temporary cannot be had, so the call ends with SCANAOT_STATUS_BAD_ALLOC
    instead of writing through a null pointer (temporaries allocated before it
    are not freed on that path)."""
    i32, ptr = ir.IntegerType.get_signless(32), llvm.PointerType.get()
    fn = llvm.LLVMFuncOp(entry_symbol(function), ir.TypeAttr.get(_entry_type(arity)))
    entry = fn.body.blocks.append(*[ptr] * arity)
    run, failed = fn.body.blocks.append(), fn.body.blocks.append()
    with ir.InsertionPoint(entry):
        point = llvm.CallOp(ptr, [], [], [], callee="scanaot_guard_enter").result
        jumped = llvm.CallOp(i32, [point], [], [], callee="_setjmp").result
        zero = llvm.ConstantOp(i32, ir.IntegerAttr.get(i32, 0)).result
        llvm.CondBrOp(llvm.ICmpOp(llvm.ICmpPredicate.eq, jumped, zero).result, [], [], run, failed)
    with ir.InsertionPoint(run):
        status = llvm.CallOp(i32, list(entry.arguments), [], [], callee=_selected(function)).result
        llvm.CallOp(ptr, [], [], [], callee="scanaot_guard_leave")
        llvm.ReturnOp(arg=status)
    with ir.InsertionPoint(failed):
        llvm.CallOp(ptr, [], [], [], callee="scanaot_guard_leave")
        llvm.ReturnOp(arg=llvm.ConstantOp(i32, ir.IntegerAttr.get(i32, BAD_ALLOC)).result)


def _add_sections(manifest_json: str, symbol: str) -> None:
    """The manifest and the digest placeholder as constant globals in their own sections."""
    data = manifest_json.encode() + b"\0"
    placeholder = b"0" * manifest_mod.DIGEST_LENGTH
    for name, payload, section in ((symbol, data, MANIFEST_SECTION),
                                   ("scanaot_digest", placeholder, DIGEST_SECTION)):
        llvm.GlobalOp(ir.Type.parse(f"!llvm.array<{len(payload)} x i8>"), name,
                      ir.Attribute.parse("#llvm.linkage<external>"), constant=True,
                      value=ir.StringAttr.get(payload.decode()), section=section, alignment=1)
