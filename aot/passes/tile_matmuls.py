"""tile-matmuls: each matrix product becomes the register-tiled loop nest of one CPU variant.

Source and target: memref + scf + vector (after bufferization and output-in-place,
which the CPU variants share: pipeline.py).

A matrix product is emitted as a call to a declared function, tagged `scan.matmul`
with its flags (ops/linalg.py, tiled_product), the same for every CPU variant: a call,
since an op of the IRDL dialect would keep the step bodies from being inlined. Before
bufferization `products_as_contractions` makes each call a linalg.generic contraction
tagged the same way (destination passing: bufferization writes it into its init's
buffer, as it did the tiles on tensors), so the variants share every pass up to here,
bufferization included (half of a variant's MLIR time). Each variant's copy of the
module then gets its own tile (rows x vector registers of accumulators,
targets/cpu_features.matmul_tile) here. Each product becomes: blocks of rows, panels
of columns, the block's tiles of rows, and the k loop innermost doing one broadcast
and one FMA per accumulator (docs/dialect.md, "Matrix products on the cpu target").

The right operand is read from packed panels when the emitter marked it `packed`
(the same on every step: a scan's non-sequence): `products_as_contractions` makes them
once per right operand, right after it is defined (so a loop's invariant weights are
packed once, outside the loop), PANEL_BYTES wide for every variant. On a CPU without
masked loads every other right operand is packed too, right before its product.
"""
from __future__ import annotations

import contextlib
from typing import Callable

from mlir import ir
from mlir.dialects import arith, linalg, memref, scf, tensor, vector

from ..emit.builders import (DYN, TILED_PRODUCT, affine_maps, dim, fold_index, index_const, index_min,
                             iterator_types, loop_index)
from .lower_scan import ops_named


def products_as_contractions(module_op: ir.Operation) -> None:
    """Before bufferization: every `scan.matmul` call under `module_op` becomes a
    linalg.generic summing the first `depth` terms of a @ b (a.T @ b) into its init
    filled with zeros (the product itself, should no tile replace it), tagged with the
    call's flags; a `packed` b is read from its panels (`pack_panels`,
    PANEL_BYTES wide, made once right after b is defined, outside every loop b does not
    vary in). The declarations the calls called go."""
    callees = set()
    panels: dict[int, ir.Value] = {}
    for op in ops_named(module_op, "func.call"):
        if TILED_PRODUCT in op.attributes:
            callees.add(ir.FlatSymbolRefAttr(op.attributes["callee"]).value)
            _as_contraction(op, panels)
    for op in list(module_op.regions[0].blocks[0].operations):
        if op.operation.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value in callees:
            op.operation.erase()


def _as_contraction(call: ir.Operation, panels: dict[int, ir.Value]) -> None:
    a, b, depth, init = call.operands
    flags = ir.DictAttr(call.attributes[TILED_PRODUCT])
    transpose_a = ir.BoolAttr(flags["transpose_lhs"]).value
    lead = 1 if transpose_a else ir.RankedTensorType(a.type).rank - 1
    d = [ir.AffineDimExpr.get(i) for i in range(lead + 2)]
    rows, j, k = d[:lead], d[lead], d[lead + 1]
    rhs, rhs_map = b, [k, j]
    if ir.BoolAttr(flags["packed"]).value:
        rhs = _panels_of(b, panels)
        width = ir.AffineConstantExpr.get(ir.RankedTensorType(rhs.type).shape[2])
        rhs_map = [ir.AffineExpr.get_floor_div(j, width), k, ir.AffineExpr.get_mod(j, width)]
    maps = [[k, *rows] if transpose_a else [*rows, k], rhs_map, [], [*rows, j]]
    with ir.InsertionPoint(call), call.location:
        elem = ir.RankedTensorType(init.type).element_type
        zeros = linalg.fill(arith.constant(elem, 0.0), outs=[init])  # dropped with the tile (_expand)
        op = linalg.GenericOp([init.type], [a, rhs, depth], [zeros],
                              affine_maps([ir.AffineMap.get(lead + 2, 0, m) for m in maps]),
                              iterator_types(["parallel"] * (lead + 1) + ["reduction"]))
        block = op.regions[0].blocks.append(elem, elem, depth.type, elem)
        with ir.InsertionPoint(block):
            x, y, terms, acc = block.arguments
            counted = arith.cmpi(arith.CmpIPredicate.slt, loop_index(lead + 1), terms)
            linalg.YieldOp([arith.select(counted, arith.addf(acc, arith.mulf(x, y)), acc)])
    op.operation.attributes[TILED_PRODUCT] = flags
    call.results[0].replace_all_uses_with(op.results[0])
    call.erase()


def _panels_of(b: ir.Value, made: dict[int, ir.Value]) -> ir.Value:
    """b's panels (a tensor), made once right after b is defined."""
    if hash(b) not in made:
        owner = b.owner
        where = (ir.InsertionPoint.at_block_begin(owner) if isinstance(owner, ir.Block)
                 else ir.InsertionPoint.after(owner.operation))
        with where, ir.Location.unknown():
            elem = ir.RankedTensorType(b.type).element_type
            width = PANEL_BYTES // (ir.FloatType(elem).width // 8)
            out = tensor.empty([*_panel_sizes(b, width), width], elem)
            made[hash(b)] = pack_panels(b, out, tensor.extract).result
    return made[hash(b)]


def tile_matmuls(module_op: ir.Operation, tile: tuple[int, int, bool]) -> None:
    """The pass: replace every product under `module_op` (a contraction on buffers tagged
    `scan.matmul`) with `tile` (rows, bytes per row of accumulators, whether the CPU has
    masked loads)."""
    for op in ops_named(module_op, "linalg.generic"):
        if TILED_PRODUCT in op.attributes:
            _expand(op, tile)


def _expand(op: ir.Operation, tile: tuple[int, int, bool]) -> None:
    lhs, rhs, depth, out = op.operands
    flags = ir.DictAttr(op.attributes[TILED_PRODUCT])
    zeros = _zero_fill_before(op, out)
    if zeros is not None:  # the tile writes every element of `out`
        zeros.erase()

    def flag(name: str) -> bool:
        return ir.BoolAttr(flags[name]).value

    with ir.InsertionPoint(op), op.location:
        local = None
        if ir.MemRefType(rhs.type).rank == 2 and not tile[2]:
            # without masked loads (SSE) every rhs is read from panels (a masked row read in
            # the k loop would be a branch per lane): one not packed before varies, packed here
            local = _local_panels(rhs, _lanes(tile, ir.MemRefType(rhs.type).element_type))
        register_tiled_matmul(lhs, rhs if local is None else local, out, flag("transpose_lhs"), depth, tile,
                              flag("depth_blocks"))
        if local is not None:
            memref.dealloc(local)
    op.erase()


def _zero_fill_before(op: ir.Operation, out: ir.Value) -> ir.Operation | None:
    """The contraction's zero fill of `out` (products_as_contractions), if it is still
    the op right before it."""
    before = op.operation
    block_ops = list(before.block.operations)
    index = next(i for i, o in enumerate(block_ops) if o.operation == before)
    fill = block_ops[index - 1].operation if index else None
    if fill is None or fill.name != "linalg.fill" or fill.operands[1] != out:
        return None
    value = fill.operands[0].owner
    if not isinstance(value, (ir.OpView, ir.Operation)) or value.operation.name != "arith.constant":
        return None
    return fill if ir.FloatAttr(value.operation.attributes["value"]).value == 0.0 else None


def _local_panels(b: ir.Value, lanes: int) -> ir.Value:
    """b's panels of `lanes` columns in a new buffer (the caller frees it)."""
    elem = ir.MemRefType(b.type).element_type
    sizes = _panel_sizes(b, lanes)
    shape = [DYN if isinstance(v, ir.Value) else v for v in sizes] + [lanes]
    out = memref.alloc(ir.MemRefType.get(shape, elem), [v for v in sizes if isinstance(v, ir.Value)], [])
    pack_panels(b, out, memref.load)
    return out


def _lanes(tile: tuple[int, int, bool], elem: ir.Type) -> int:
    return tile[1] // (ir.FloatType(elem).width // 8)


def _panel_sizes(b: ir.Value, width: int) -> list[int | ir.Value]:
    """The panels' count and depth for b (K x N) in panels `width` columns wide."""
    return [fold_index(arith.ceildivui(dim(b, 1), index_const(width))), fold_index(dim(b, 0))]


def register_tiled_matmul(a: ir.Value, b: ir.Value, c: ir.Value, transpose_a: bool, k_dim: ir.Value,
                          tile: tuple[int, int, bool], depth_blocks: bool) -> None:
    """a @ b (a.T @ b with `transpose_a`) written into the buffer c (its shape; every
    element is written) with a tile of rows x lanes accumulators kept in vector registers over the
    first `k_dim` terms. An `a` of rank > 2 (not transposed)
    is a stack of rows: its leading dims are the rows of one product, kept in the
    result's shape (`x_t @ W` over a whole sequence is one product).

    Every tile is computed with masked loads/stores on its columns and clamped row
    indices for the rows past the end, so any shape works and nothing is read or
    written outside the operands. `tile`: (rows, bytes per row) of accumulators, the
    CPU variant's (targets/cpu_features.matmul_tile), and whether it has masked loads.

    `b`: the right operand's rows (K x N), or its panels (`pack_panels`: P x K x W,
    W a multiple of the tile's lanes): the k loop then streams one contiguous panel
    instead of a column strip of rows a row-stride apart (rows 4 KB apart fall into the
    same few L1 cache sets).

    `depth_blocks`: K runs in blocks of DEPTH_BLOCK terms (a product over a whole
    sequence); a step's products (K a layer's width) leave it out: it adds a read of
    the partial product to every tile, code LLVM compiles for every product.
    """
    elem = ir.MemRefType(a.type).element_type
    rows_per_tile = tile[0]
    lanes = _lanes(tile, elem)
    vtype = ir.VectorType.get([lanes], elem)
    mask_type = ir.VectorType.get([lanes], ir.IntegerType.get_signless(1))
    rank = ir.MemRefType(a.type).rank
    lead = [dim(a, 1)] if transpose_a else [dim(a, axis) for axis in range(rank - 1)]
    m, n = lead[0], dim(c, len(lead))
    panel_width = ir.MemRefType(b.type).shape[2] if ir.MemRefType(b.type).rank == 3 else None
    assert panel_width is None or panel_width % lanes == 0, (panel_width, lanes)
    for size in lead[1:]:
        m = arith.muli(m, size)
    zero_i, one_i = index_const(0), index_const(1)
    pad = arith.constant(elem, 0.0)
    row_map = ir.AffineMapAttr.get(ir.AffineMap.get(2, 0, [ir.AffineDimExpr.get(1)]))
    out_map = ir.AffineMapAttr.get(ir.AffineMap.get(len(lead) + 1, 0, [ir.AffineDimExpr.get(len(lead))]))
    # in bounds: rows are clamped and the columns past the end masked (in_bounds=false
    # would AND a second mask of the same bound into every access)
    in_bounds = ir.ArrayAttr.get([ir.BoolAttr.get(True)])
    panel_map = ir.AffineMapAttr.get(ir.AffineMap.get(3, 0, [ir.AffineDimExpr.get(2)]))
    # blocks of rows, then columns, then the rows of the block: a panel of b's columns
    # is read from memory once per block and reused by the block's tiles of rows from
    # the L1/L2 cache (a block of a's rows stays there too)
    block_rows = index_const(rows_per_tile * BLOCK_TILES)
    last_row = arith.subi(m, one_i)
    # blocks of K terms outermost: a panel of b stays in L1 and a block of a in L2 however
    # long the products are (x.T @ y over 32,000 rows ran 6x slower than OpenBLAS before);
    # the accumulators start from zero in the first block (one block when K = 0: c is
    # all zeros), from c in the others
    depth_loop, kb, kb_end, first_block = None, zero_i, k_dim, None
    if depth_blocks:
        depth_loop = scf.ForOp(zero_i, arith.maxsi(k_dim, one_i), index_const(DEPTH_BLOCK))
    with ir.InsertionPoint(depth_loop.body) if depth_loop else contextlib.nullcontext():
        if depth_loop:
            kb = depth_loop.induction_variable
            kb_end = index_min(arith.addi(kb, index_const(DEPTH_BLOCK)), k_dim)
            first_block = arith.cmpi(arith.CmpIPredicate.eq, kb, zero_i)
        blocks_loop = scf.ForOp(zero_i, m, block_rows)
        if depth_loop:
            scf.YieldOp([])
    with ir.InsertionPoint(blocks_loop.body):
        block_end = index_min(arith.addi(blocks_loop.induction_variable, block_rows), m)
        cols_loop = scf.ForOp(zero_i, n, index_const(lanes))
        scf.YieldOp([])
    with ir.InsertionPoint(cols_loop.body):
        j0 = cols_loop.induction_variable
        if panel_width is not None:
            panel, within = arith.divui(j0, index_const(panel_width)), arith.remui(j0, index_const(panel_width))
        cols = index_min(index_const(lanes), arith.subi(n, j0))
        mask = vector.CreateMaskOp(mask_type, [cols]).result
        rows_loop = scf.ForOp(blocks_loop.induction_variable, block_end, index_const(rows_per_tile))
        scf.YieldOp([])
    with ir.InsertionPoint(rows_loop.body):
        i0 = rows_loop.induction_variable
        rows = [_row_index(index_min(arith.addi(i0, index_const(r)), last_row), lead)
                for r in range(rows_per_tile)]
        zeros = [vector.BroadcastOp(vtype, pad).result] * rows_per_tile
        if first_block is None:
            starts = zeros
        else:  # the partial product of the earlier blocks of terms
            starts = _first_or(first_block, zeros, [
                lambda r=r: vector.TransferReadOp(vtype, c, [*rows[r], j0], out_map, pad, in_bounds,
                                                  mask=mask).result for r in range(rows_per_tile)])
        k_loop = scf.ForOp(kb, kb_end, one_i, starts)
        with ir.InsertionPoint(k_loop.body):
            k = k_loop.induction_variable
            if panel_width is None:
                bv = vector.TransferReadOp(vtype, b, [k, j0], row_map, pad, in_bounds, mask=mask).result
            else:
                bv = vector.TransferReadOp(vtype, b, [panel, k, within], panel_map, pad, in_bounds).result
            accs = []
            for r, acc in enumerate(k_loop.inner_iter_args):
                index = [k, *rows[r]] if transpose_a else [*rows[r], k]
                av = vector.BroadcastOp(vtype, memref.load(a, index)).result
                accs.append(vector.FMAOp(av, bv, acc).result)
            scf.YieldOp(accs)
        for r, acc in enumerate(k_loop.results):
            valid = arith.cmpi(arith.CmpIPredicate.slt, arith.addi(i0, index_const(r)), m)
            row_cols = arith.select(valid, cols, zero_i)
            row_mask = vector.CreateMaskOp(mask_type, [row_cols]).result
            vector.TransferWriteOp(None, acc, c, [*rows[r], j0], out_map, in_bounds, mask=row_mask)
        scf.YieldOp([])
    (depth_loop or blocks_loop).operation.attributes[TILE_NEST] = ir.UnitAttr.get()


def _first_or(first: ir.Value, values: list[ir.Value], otherwise: list) -> list[ir.Value]:
    """`values` when `first` holds, else each of `otherwise` (callables emitting a value)
    computed: an scf.if, so the other branch's reads run only when needed."""
    branch = scf.IfOp(first, [v.type for v in values], has_else=True)
    with ir.InsertionPoint(branch.then_block):
        scf.YieldOp(values)
    with ir.InsertionPoint(branch.else_block):
        scf.YieldOp([emit() for emit in otherwise])
    return list(branch.results)


# the attribute marking the outermost loop of a product's nest (passes/outline_tiles.py)
TILE_NEST = "scan.tile"
# tiles of rows per block of register_tiled_matmul (a block of a: 128 rows at AVX-512)
BLOCK_TILES = 16
# terms of K per block (a panel of b: 256 x 32 floats = 32 KB, in L1)
DEPTH_BLOCK = 256
# bytes per row of a packed right operand's panels, made before the variants part: a
# multiple of every variant's row of accumulators (a tile reads its lanes from within a
# panel), the widest being two AVX-512 registers (cpu_features.matmul_tile)
PANEL_BYTES = 128


def pack_panels(b: ir.Value, out: ir.Value, read: Callable) -> ir.OpView:
    """The linalg.generic writing b (K x N) into `out` (P x K x W) as panels of W columns:
    panel p row k holds b[k, p*W : (p+1)*W], zero past column N. `read(b, indices)`
    reads an element (tensor.extract, memref.load)."""
    lanes = ir.ShapedType(out.type).shape[2]
    elem = ir.ShapedType(b.type).element_type
    n = dim(b, 1)
    last = arith.subi(n, index_const(1))
    zero = arith.constant(elem, 0.0)
    results = [out.type] if isinstance(out.type, ir.RankedTensorType) else []
    op = linalg.GenericOp(results, [], [out], affine_maps([ir.AffineMap.get_identity(3)]),
                          iterator_types(["parallel"] * 3))
    block = op.regions[0].blocks.append(elem)
    with ir.InsertionPoint(block):
        column = arith.addi(arith.muli(loop_index(0), index_const(lanes)), loop_index(2))
        value = read(b, [loop_index(1), index_min(column, last)])
        linalg.YieldOp([arith.select(arith.cmpi(arith.CmpIPredicate.ult, column, n), value, zero)])
    return op


def _row_index(row: ir.Value, lead: list[ir.Value]) -> list[ir.Value]:
    """A flat row number as an index into the leading dims (row-major)."""
    index = []
    for size in reversed(lead[1:]):
        index.append(arith.remui(row, size))
        row = arith.divui(row, size)
    return [row, *reversed(index)]
