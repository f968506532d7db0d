"""A library's entry points, its CPU variants and its sealed manifest, in the LLVM dialect.

Each CPU variant of a cpu library is lowered from its own module; `seal_variant`
renames its entry points `_mlir_ciface_NAME{suffix}` and makes every other
definition internal, so variants link side by side and nothing but the entry
points can be bound from outside. `dispatch_module` builds the small module
compiled for baseline x86-64 that holds, per function, a GNU ifunc
`_mlir_ciface_NAME` whose resolver (run once, when the library is loaded) calls
`scanaot_cpu_features()` (runtime/cpu_features.c) and returns the most capable
variant this CPU can run, or `scanaot_cpu_unsupported` (a status, never a
SIGILL); and the manifest and digest placeholder in their own sections.
"""
from __future__ import annotations

from typing import Sequence

from mlir import ir
from mlir.dialects import llvm

from .passes.lower_scan import ops_named
from .runtime import manifest as manifest_mod
from .runtime.cpu import mask
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


def dispatch_module(functions: Sequence[str], variants: Sequence[dict] | None, manifest_json: str,
                    library: str) -> ir.Module:
    """The resolvers and ifuncs (when `variants` is given) and the manifest sections."""
    module = ir.Module.create()
    with ir.InsertionPoint(module.body):
        if variants:
            _declare("scanaot_cpu_features", ir.IntegerType.get_signless(64))
            _declare("scanaot_cpu_unsupported", ir.IntegerType.get_signless(32))
            for function in functions:
                _ifunc(function, variants)
        _add_sections(manifest_json, manifest_symbol(library))
    return module


def _function_type(result: ir.Type) -> ir.Type:
    """!llvm.func<result ()>: the bindings have no builder for LLVM function types."""
    return ir.Type.parse(f"!llvm.func<{result} ()>")


def _declare(name: str, result: ir.Type) -> None:
    llvm.LLVMFuncOp(name, ir.TypeAttr.get(_function_type(result)))


def _ifunc(function: str, variants: Sequence[dict]) -> None:
    """`_mlir_ciface_NAME`, bound at load time to the best variant this CPU runs."""
    ptr = llvm.PointerType.get()
    i64 = ir.IntegerType.get_signless(64)
    status_fn = _function_type(ir.IntegerType.get_signless(32))
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
    llvm.IFuncOp(entry_symbol(function), ir.TypeAttr.get(status_fn), ir.FlatSymbolRefAttr.get(resolver),
                 ir.TypeAttr.get(ptr), ir.Attribute.parse("#llvm.linkage<external>"))


def _add_sections(manifest_json: str, symbol: str) -> None:
    """The manifest and the digest placeholder as constant globals in their own sections."""
    data = manifest_json.encode() + b"\0"
    placeholder = b"0" * manifest_mod.DIGEST_LENGTH
    for name, payload, section in ((symbol, data, MANIFEST_SECTION),
                                   ("scanaot_digest", placeholder, DIGEST_SECTION)):
        llvm.GlobalOp(ir.Type.parse(f"!llvm.array<{len(payload)} x i8>"), name,
                      ir.Attribute.parse("#llvm.linkage<external>"), constant=True,
                      value=ir.StringAttr.get(payload.decode()), section=section, alignment=1)
