"""A library's entry points, its CPU variants and its sealed manifest, in the LLVM dialect.

Each CPU variant of a cpu library is lowered from its own module; `seal_variant`
renames its C interface functions to the variant's entry symbols
(`scanaot_LIB__NAME__x86_64_v3`, symbols.py) and makes every other definition
internal, so variants link side by side and nothing but the entry points can be
bound from outside. `dispatch_module` builds the small module compiled for
baseline x86-64 that holds, per function, a GNU ifunc whose resolver (run once,
when the library is loaded) calls `scanaot_cpu_features()`
(runtime/cpu_features.c) and returns the most capable variant this CPU can run,
or `scanaot_cpu_unsupported` (a status, never a SIGILL); the exported entry
point `scanaot_LIB__NAME`, which calls it with a recovery point for failed
allocations; and the manifest and digest placeholder in their own sections.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mlir import ir
from mlir.dialects import llvm

from ..runtime import manifest as manifest_mod
from ..runtime.cpu import mask
from ..runtime.elf import DIGEST_SECTION, MANIFEST_SECTION, STATE_SECTION
from ..runtime.status import BAD_ALLOC
from .symbols import manifest_symbol, variant_symbol

_INTERNAL = "#llvm.linkage<internal>"
_HIDDEN = "1 : i64"  # LLVM::Visibility::Hidden


def seal_variant(module: ir.Module, entries: dict[str, str], variant: dict | None,
                 shared: frozenset[str] = frozenset()) -> None:
    """Each C interface function in `entries` renamed to its entry symbol (plus the
    variant's suffix); the kernels' shared bodies named in `shared` hidden (the
    variants' objects call them: passes/share_kernels.py); all other definitions
    internal; the variant's tuning CPU on every function. Without a variant (cuda)
    the entry points keep their names."""
    for op in module.body.operations:
        if op.operation.name not in ("llvm.func", "llvm.mlir.global"):
            continue
        op = op.operation
        name = ir.StringAttr(op.attributes["sym_name"]).value
        defined = op.name == "llvm.mlir.global" or bool(op.regions[0].blocks)
        if not defined:
            continue
        if name in entries:
            new = variant_symbol(entries[name], variant) if variant else entries[name]
            ir.SymbolTable.replace_all_symbol_uses(name, new, module.operation)
            op.attributes["sym_name"] = ir.StringAttr.get(new)
        elif name in shared:
            op.attributes["visibility_"] = ir.Attribute.parse(_HIDDEN)
        elif "section" not in op.attributes:
            op.attributes["linkage"] = ir.Attribute.parse(_INTERNAL)
        if variant and variant.get("tune") and op.name == "llvm.func":
            op.attributes["tune_cpu"] = ir.StringAttr.get(variant["tune"])


def dispatch_module(entries: dict[str, int], variants: Sequence[dict] | None, manifest_json: str,
                    library: str, state: tuple[str, bytes] | None = None) -> ir.Module:
    """The guarded entry points, resolvers and ifuncs (when `variants` is given) and the
    manifest sections. `entries`: entry symbol -> number of pointer parameters.
    `state`: (symbol, bytes) of the shared variables' shipped values (safetensors), in
    their own section: sealed by the digest like the code, read by the runtime from the
    file and by C programs through the symbol (the header's `_state_new`)."""
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
            for entry, arity in entries.items():
                _ifunc(entry, arity, variants)
                _guarded_entry(entry, arity)
        _add_sections(manifest_json, manifest_symbol(library))
        if state is not None:
            _add_state(*state)
    return module


def _add_state(symbol: str, data: bytes) -> None:
    """The shipped values as a constant byte array (64-byte aligned: the arrays inside
    start 8-byte aligned, as safetensors pads its header)."""
    values = ir.DenseElementsAttr.get(np.frombuffer(data, dtype=np.int8).copy())
    llvm.GlobalOp(ir.Type.parse(f"!llvm.array<{len(data)} x i8>"), symbol,
                  ir.Attribute.parse("#llvm.linkage<external>"), constant=True, value=values,
                  section=STATE_SECTION, alignment=64)


def _function_type(result: ir.Type) -> ir.Type:
    """!llvm.func<result ()>: the bindings have no builder for LLVM function types."""
    return ir.Type.parse(f"!llvm.func<{result} ()>")


def _declare(name: str, result: ir.Type) -> None:
    llvm.LLVMFuncOp(name, ir.TypeAttr.get(_function_type(result)))


def _entry_type(arity: int) -> ir.Type:
    """An entry point's type: `arity` descriptor pointers in, the status out."""
    return ir.Type.parse(f"!llvm.func<i32 ({', '.join(['ptr'] * arity)})>")


def _ifunc(entry: str, arity: int, variants: Sequence[dict]) -> None:
    """An internal ifunc bound at load time to the best variant this CPU runs."""
    ptr = llvm.PointerType.get()
    i64 = ir.IntegerType.get_signless(64)
    for v in variants:
        _declare(variant_symbol(entry, v), ir.IntegerType.get_signless(32))
    resolver = f"{entry}__resolve"
    fn = llvm.LLVMFuncOp(resolver, ir.TypeAttr.get(_function_type(ptr)),
                         linkage=ir.Attribute.parse(_INTERNAL))
    with ir.InsertionPoint(fn.body.blocks.append()):
        have = llvm.CallOp(i64, [], [], [], callee="scanaot_cpu_features").result
        chosen = llvm.AddressOfOp(ptr, "scanaot_cpu_unsupported").result
        for v in variants:  # least capable first: later variants win
            need = llvm.ConstantOp(i64, ir.IntegerAttr.get(i64, mask(v["features"]))).result
            present = llvm.AndOp(have, need).result
            ok = llvm.ICmpOp(llvm.ICmpPredicate.eq, present, need).result
            chosen = llvm.SelectOp(ok, llvm.AddressOfOp(ptr, variant_symbol(entry, v)).result, chosen).result
        llvm.ReturnOp(arg=chosen)
    llvm.IFuncOp(_selected(entry), ir.TypeAttr.get(_entry_type(arity)), ir.FlatSymbolRefAttr.get(resolver),
                 ir.TypeAttr.get(ptr), ir.Attribute.parse(_INTERNAL))


def _selected(entry: str) -> str:
    return f"{entry}__selected"


def _guarded_entry(entry: str, arity: int) -> None:
    """The exported entry point: the selected variant, called with a recovery point set.

    The library's allocator (runtime/cpu_alloc.c) frees the call's temporaries and
    returns there when memory for one cannot be had, so the call ends with
    SCANAOT_STATUS_BAD_ALLOC instead of writing through a null pointer."""
    i32, ptr = ir.IntegerType.get_signless(32), llvm.PointerType.get()
    fn = llvm.LLVMFuncOp(entry, ir.TypeAttr.get(_entry_type(arity)))
    block = fn.body.blocks.append(*[ptr] * arity)
    run, failed = fn.body.blocks.append(), fn.body.blocks.append()
    with ir.InsertionPoint(block):
        point = llvm.CallOp(ptr, [], [], [], callee="scanaot_guard_enter").result
        jumped = llvm.CallOp(i32, [point], [], [], callee="_setjmp").result
        zero = llvm.ConstantOp(i32, ir.IntegerAttr.get(i32, 0)).result
        llvm.CondBrOp(llvm.ICmpOp(llvm.ICmpPredicate.eq, jumped, zero).result, [], [], run, failed)
    with ir.InsertionPoint(run):
        status = llvm.CallOp(i32, list(block.arguments), [], [], callee=_selected(entry)).result
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
