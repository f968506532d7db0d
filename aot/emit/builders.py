"""Small MLIR builders every emission rule shares: element types, constants, dims,
scalar conversions, `linalg.generic`, and the status word's merge.

Bool is stored as i8 and computed as i1; every emitted function returns an i32
status whose bits runtime/status.py names.
"""
from __future__ import annotations

from typing import Callable, Sequence

from mlir import ir
from mlir.dialects import arith, linalg, memref, tensor

from ..graph.basic import TensorType
from ..runtime import status as st

DYN = ir.ShapedType.get_dynamic_size()
# the attribute tagging a call as a matrix product that passes/tile_matmuls.py tiles
TILED_PRODUCT = "scan.matmul"
_ELEMENT = {"bool": 8, "int8": 8, "int16": 16, "int32": 32, "int64": 64}


def element_type(dtype: str) -> ir.Type:
    """Storage element type: bool is stored as i8 (memrefs of i1 break the LLVM lowering)."""
    if dtype == "float32":
        return ir.F32Type.get()
    if dtype == "float64":
        return ir.F64Type.get()
    return ir.IntegerType.get_signless(_ELEMENT[dtype])


def compute_type(dtype: str) -> ir.Type:
    """Type of one element while computing: bool is i1."""
    return ir.IntegerType.get_signless(1) if dtype == "bool" else element_type(dtype)


def tensor_type(t: TensorType) -> ir.RankedTensorType:
    return ir.RankedTensorType.get([1 if b else DYN for b in t.broadcastable], element_type(t.dtype))


def index_const(value: int) -> ir.Value:
    return arith.constant(ir.IndexType.get(), value)


def i32_const(value: int) -> ir.Value:
    return arith.constant(ir.IntegerType.get_signless(32), value)


def parallel_maps(n: int) -> ir.Attribute:
    return ir.ArrayAttr.get([ir.Attribute.parse("#linalg.iterator_type<parallel>")] * n)


def iterator_types(kinds: Sequence[str]) -> ir.Attribute:
    return ir.ArrayAttr.get([ir.Attribute.parse(f"#linalg.iterator_type<{k}>") for k in kinds])


def affine_maps(maps: Sequence[ir.AffineMap]) -> ir.Attribute:
    return ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps])


def dim(value: ir.Value, axis: int) -> ir.Value:
    """A tensor's or a buffer's size along `axis` (a constant where static)."""
    shape = ir.ShapedType(value.type).shape
    if shape[axis] != DYN:
        return index_const(shape[axis])
    return (tensor.dim if isinstance(value.type, ir.RankedTensorType) else memref.dim)(value, index_const(axis))


def dims(value: ir.Value) -> list[ir.Value]:
    return [dim(value, axis) for axis in range(ir.RankedTensorType(value.type).rank)]


def empty(sizes: Sequence[ir.Value], t: TensorType | ir.Type) -> ir.Value:
    """`tensor.empty` with static sizes where the type has them."""
    elem = element_type(t.dtype) if isinstance(t, TensorType) else t
    static = [1 if isinstance(t, TensorType) and t.broadcastable[i] else None for i in range(len(sizes))]
    args = [1 if s == 1 else fold_index(v) for v, s in zip(sizes, static)]
    return tensor.empty(args, elem)


def fold_index(v: ir.Value) -> int | ir.Value:
    """A constant index as an int (gives static sizes), anything else as is."""
    owner = v.owner
    if isinstance(owner, ir.OpView) and owner.operation.name == "arith.constant":
        return ir.IntegerAttr(owner.attributes["value"]).value
    if isinstance(owner, ir.Operation) and owner.name == "arith.constant":
        return ir.IntegerAttr(owner.attributes["value"]).value
    return v


def load_scalar(value: ir.Value, dtype: str) -> ir.Value:
    """A stored element in its compute type (i8 -> i1 for bool)."""
    if dtype == "bool":
        zero = arith.constant(value.type, 0)
        return arith.cmpi(arith.CmpIPredicate.ne, value, zero)
    return value


def store_scalar(value: ir.Value, dtype: str) -> ir.Value:
    if dtype == "bool":
        return arith.extui(ir.IntegerType.get_signless(8), value)
    return value


def cast_scalar(value: ir.Value, src: str, dst: str) -> ir.Value:
    """Convert one element between dtypes (compute types: bool is i1)."""
    if src == dst:
        return value
    target = compute_type(dst)
    src_float, dst_float = src.startswith("float"), dst.startswith("float")
    if dst == "bool":
        zero = arith.constant(value.type, 0.0 if src_float else 0)
        if src_float:
            return arith.cmpf(arith.CmpFPredicate.UNE, value, zero)
        return arith.cmpi(arith.CmpIPredicate.ne, value, zero)
    if src_float and dst_float:
        wider = ir.FloatType(target).width > ir.FloatType(value.type).width
        return arith.extf(target, value) if wider else arith.truncf(target, value)
    if src_float:
        return arith.fptosi(target, value)
    if dst_float:
        return arith.uitofp(target, value) if src == "bool" else arith.sitofp(target, value)
    src_w = ir.IntegerType(value.type).width
    dst_w = ir.IntegerType(target).width
    if dst_w > src_w:
        return arith.extui(target, value) if src == "bool" else arith.extsi(target, value)
    return arith.trunci(target, value)


def scalar_of(value: ir.Value, dtype: str) -> ir.Value:
    """The element of a rank-0 tensor, in compute type."""
    return load_scalar(tensor.extract(value, []), dtype)


def scalar_tensor(value: ir.Value, dtype: str) -> ir.Value:
    elem = store_scalar(value, dtype)
    return tensor.from_elements(ir.RankedTensorType.get([], elem.type), [elem])


def to_index(value: ir.Value, dtype: str) -> ir.Value:
    """A rank-0 integer tensor as an index."""
    scalar = scalar_of(value, dtype)
    if dtype == "bool":
        scalar = arith.extui(ir.IntegerType.get_signless(64), scalar)
    return arith.index_cast(ir.IndexType.get(), scalar)


def index_min(a: ir.Value, b: ir.Value) -> ir.Value:
    return arith.minsi(a, b)


def index_max(a: ir.Value, b: ir.Value) -> ir.Value:
    return arith.maxsi(a, b)


def generic(inputs: Sequence[ir.Value], init: ir.Value, maps: Sequence[ir.AffineMap],
            kinds: Sequence[str], body: Callable[[list[ir.Value]], ir.Value]) -> ir.Value:
    """A one-result linalg.generic; `body` maps block arguments to the yielded element."""
    op = linalg.GenericOp([init.type], list(inputs), [init], affine_maps(maps), iterator_types(kinds))
    elems = [ir.RankedTensorType(v.type).element_type for v in (*inputs, init)]
    block = op.regions[0].blocks.append(*elems)
    with ir.InsertionPoint(block):
        linalg.YieldOp([body(list(block.arguments))])
    return op.results[0]


def fill(value: ir.Value, init: ir.Value) -> ir.Value:
    return linalg.fill(value, outs=[init])


def loop_index(axis: int) -> ir.Value:
    """The current iteration's index along `axis` inside a linalg.generic body."""
    return linalg.IndexOp(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), axis)).result


def merge_status(old: ir.Value, new: ir.Value) -> ir.Value:
    """`old | new`, except that a check site already in `old` is kept: the error names
    the first check that failed. Three i32 ops; nothing when `new` folds to 0."""
    has_site = arith.cmpi(arith.CmpIPredicate.uge, old, i32_const(1 << st.SITE_SHIFT))
    keep = arith.select(has_site, i32_const(st.KIND_MASK), i32_const(-1))
    return arith.ori(old, arith.andi(new, keep))


def conform(value: ir.Value, t: TensorType) -> ir.Value:
    """Cast a tensor to the MLIR type the variable's Aesara type implies."""
    want = tensor_type(t)
    if value.type == want:
        return value
    return tensor.cast(want, value)


def memref_type(t: TensorType) -> ir.MemRefType:
    return ir.MemRefType.get([DYN] * t.ndim, element_type(t.dtype))
