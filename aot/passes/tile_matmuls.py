"""tile-matmuls: each `scan.matmul` call becomes the register-tiled loop nest of one CPU variant.

Source and target: tensor + scf + vector (after the front end the CPU variants share,
pipeline.py; before fold-generator-reads and bufferization).

A matrix product is emitted as a call to a declared function, tagged `scan.matmul`
with its flags (ops/linalg.py, tiled_product), the same for every CPU variant, so
the variants share emission and every pass up to here (a third of a variant's
MLIR time; a call, since an op of the IRDL dialect would keep the step bodies from
being inlined); each variant's copy of the module then gets its own tile (rows x vector
registers of accumulators, targets/cpu_features.matmul_tile) here. Each product
becomes: blocks of rows, panels of columns, the block's tiles of rows, and the k
loop innermost doing one broadcast and one FMA per accumulator (docs/dialect.md,
"Matrix products on the cpu target").

The right operand is read from packed panels when the emitter marked it `packed`
(the same on every step: a scan's non-sequence) and on a CPU without masked loads;
the panels are made once per right operand and lanes, right after the operand is
defined, so a loop's invariant weights are packed once, outside the loop.
"""
from __future__ import annotations

import contextlib

from mlir import ir
from mlir.dialects import arith, scf, tensor, vector

from ..emit.builders import TILED_PRODUCT, dim, fold_index, generic, index_const, index_min, loop_index
from .lower_scan import ops_named


def tile_matmuls(module_op: ir.Operation, tile: tuple[int, int, bool]) -> None:
    """The pass: replace every `scan.matmul` call under `module_op` with `tile` (rows, bytes
    per row of accumulators, whether the CPU has masked loads); the declarations they
    called go."""
    panels: dict[tuple[int, int], ir.Value] = {}
    callees = set()
    for op in ops_named(module_op, "func.call"):
        if TILED_PRODUCT in op.attributes:
            callees.add(ir.FlatSymbolRefAttr(op.attributes["callee"]).value)
            _expand(op, tile, panels)
    for op in list(module_op.regions[0].blocks[0].operations):
        if op.operation.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value in callees:
            op.operation.erase()


def _expand(op: ir.Operation, tile: tuple[int, int, bool], panels: dict[tuple[int, int], ir.Value]) -> None:
    lhs, rhs, depth, init = op.operands
    flags = ir.DictAttr(op.attributes[TILED_PRODUCT])

    def flag(name: str) -> bool:
        return ir.BoolAttr(flags[name]).value

    rhs_panels = None
    # without masked loads (SSE) every rhs is read from panels: a masked row read in the k
    # loop would be a branch per lane
    if flag("packed") or not tile[2]:
        rhs_panels = _panels_of(rhs, _lanes(tile, ir.RankedTensorType(rhs.type).element_type), panels)
    with ir.InsertionPoint(op), op.location:
        product = register_tiled_matmul(lhs, rhs, init, flag("transpose_lhs"), depth, tile, rhs_panels,
                                        flag("depth_blocks"))
    op.results[0].replace_all_uses_with(product)
    op.erase()


def _panels_of(b: ir.Value, lanes: int, made: dict[tuple[int, int], ir.Value]) -> ir.Value:
    """b's panels, made once right after b is defined (outside every loop b does not vary in)."""
    key = (hash(b), lanes)
    if key not in made:
        owner = b.owner
        where = (ir.InsertionPoint.at_block_begin(owner) if isinstance(owner, ir.Block)
                 else ir.InsertionPoint.after(owner.operation))
        with where, ir.Location.unknown():
            made[key] = pack_panels(b, lanes)
    return made[key]


def _lanes(tile: tuple[int, int, bool], elem: ir.Type) -> int:
    return tile[1] // (ir.FloatType(elem).width // 8)


def register_tiled_matmul(a: ir.Value, b: ir.Value, c: ir.Value, transpose_a: bool, k_dim: ir.Value,
                          tile: tuple[int, int, bool], panels: ir.Value | None, depth_blocks: bool) -> ir.Value:
    """a @ b (a.T @ b with `transpose_a`) written into c (its shape; every element is
    written) with a tile of rows x lanes accumulators kept in vector registers over the
    first `k_dim` terms. An `a` of rank > 2 (not transposed)
    is a stack of rows: its leading dims are the rows of one product, kept in the
    result's shape (`x_t @ W` over a whole sequence is one product).

    Every tile is computed with masked loads/stores on its columns and clamped row
    indices for the rows past the end, so any shape works and nothing is read or
    written outside the operands. `tile`: (rows, bytes per row) of accumulators, the
    CPU variant's (targets/cpu_features.matmul_tile), and whether it has masked loads.

    `panels`: b copied into panels of `lanes` columns (`pack_panels`), or None to read
    b's rows in place: the k loop then streams one contiguous panel instead of a
    column strip of rows a row-stride apart (rows 4 KB apart fall into the same few L1
    cache sets).

    `depth_blocks`: K runs in blocks of DEPTH_BLOCK terms (a product over a whole
    sequence); a step's products (K a layer's width) leave it out: it adds a read of
    the partial product to every tile, code LLVM compiles for every product.
    """
    elem = ir.RankedTensorType(a.type).element_type
    rows_per_tile = tile[0]
    lanes = _lanes(tile, elem)
    vtype = ir.VectorType.get([lanes], elem)
    mask_type = ir.VectorType.get([lanes], ir.IntegerType.get_signless(1))
    rank = ir.RankedTensorType(a.type).rank
    lead = [dim(a, 1)] if transpose_a else [dim(a, axis) for axis in range(rank - 1)]
    m, n = lead[0], dim(b, 1)
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
        depth_loop = scf.ForOp(zero_i, arith.maxsi(k_dim, one_i), index_const(DEPTH_BLOCK), [c])
    with ir.InsertionPoint(depth_loop.body) if depth_loop else contextlib.nullcontext():
        if depth_loop:
            kb = depth_loop.induction_variable
            kb_end = index_min(arith.addi(kb, index_const(DEPTH_BLOCK)), k_dim)
            first_block = arith.cmpi(arith.CmpIPredicate.eq, kb, zero_i)
        blocks_loop = scf.ForOp(zero_i, m, block_rows, [depth_loop.inner_iter_args[0] if depth_loop else c])
    with ir.InsertionPoint(blocks_loop.body):
        block_end = index_min(arith.addi(blocks_loop.induction_variable, block_rows), m)
        cols_loop = scf.ForOp(zero_i, n, index_const(lanes), [blocks_loop.inner_iter_args[0]])
    with ir.InsertionPoint(cols_loop.body):
        j0 = cols_loop.induction_variable
        panel = arith.divui(j0, index_const(lanes))
        cols = index_min(index_const(lanes), arith.subi(n, j0))
        mask = vector.CreateMaskOp(mask_type, [cols]).result
        rows_loop = scf.ForOp(blocks_loop.induction_variable, block_end, index_const(rows_per_tile),
                              [cols_loop.inner_iter_args[0]])
        with ir.InsertionPoint(rows_loop.body):
            i0 = rows_loop.induction_variable
            rows = [_row_index(index_min(arith.addi(i0, index_const(r)), last_row), lead)
                    for r in range(rows_per_tile)]
            out = rows_loop.inner_iter_args[0]
            zeros = [vector.BroadcastOp(vtype, pad).result] * rows_per_tile
            if first_block is None:
                starts = zeros
            else:  # the partial product of the earlier blocks of terms
                starts = _first_or(first_block, zeros, [
                    lambda r=r: vector.TransferReadOp(vtype, out, [*rows[r], j0], out_map, pad, in_bounds,
                                                      mask=mask).result for r in range(rows_per_tile)])
            k_loop = scf.ForOp(kb, kb_end, one_i, starts)
            with ir.InsertionPoint(k_loop.body):
                k = k_loop.induction_variable
                if panels is None:
                    bv = vector.TransferReadOp(vtype, b, [k, j0], row_map, pad, in_bounds, mask=mask).result
                else:
                    bv = vector.TransferReadOp(vtype, panels, [panel, k, zero_i], panel_map, pad, in_bounds).result
                accs = []
                for r, acc in enumerate(k_loop.inner_iter_args):
                    index = [k, *rows[r]] if transpose_a else [*rows[r], k]
                    av = vector.BroadcastOp(vtype, tensor.extract(a, index)).result
                    accs.append(vector.FMAOp(av, bv, acc).result)
                scf.YieldOp(accs)
            for r, acc in enumerate(k_loop.results):
                valid = arith.cmpi(arith.CmpIPredicate.slt, arith.addi(i0, index_const(r)), m)
                row_cols = arith.select(valid, cols, zero_i)
                row_mask = vector.CreateMaskOp(mask_type, [row_cols]).result
                out = vector.TransferWriteOp(out.type, acc, out, [*rows[r], j0], out_map, in_bounds,
                                             mask=row_mask).result
            scf.YieldOp([out])
        scf.YieldOp([rows_loop.results[0]])
    with ir.InsertionPoint(blocks_loop.body):
        scf.YieldOp([cols_loop.results[0]])
    (depth_loop or blocks_loop).operation.attributes[TILE_NEST] = ir.UnitAttr.get()
    if depth_loop is None:
        return blocks_loop.results[0]
    with ir.InsertionPoint(depth_loop.body):
        scf.YieldOp([blocks_loop.results[0]])
    return depth_loop.results[0]


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


def pack_panels(b: ir.Value, lanes: int) -> ir.Value:
    """b (K x N) as ceil(N / lanes) panels of K x lanes: panel p row k holds
    b[k, p*lanes : (p+1)*lanes], zero past column N."""
    elem = ir.RankedTensorType(b.type).element_type
    n = dim(b, 1)
    count = arith.ceildivui(n, index_const(lanes))
    out = tensor.empty([fold_index(count), fold_index(dim(b, 0)), lanes], elem)
    last = arith.subi(n, index_const(1))
    zero = arith.constant(elem, 0.0)

    def body(args):
        column = arith.addi(arith.muli(loop_index(0), index_const(lanes)), loop_index(2))
        value = tensor.extract(b, [loop_index(1), index_min(column, last)])
        return arith.select(arith.cmpi(arith.CmpIPredicate.ult, column, n), value, zero)

    return generic([], out, [ir.AffineMap.get_identity(3)], ["parallel"] * 3, body)


def _row_index(row: ir.Value, lead: list[ir.Value]) -> list[ir.Value]:
    """A flat row number as an index into the leading dims (row-major)."""
    index = []
    for size in reversed(lead[1:]):
        index.append(arith.remui(row, size))
        row = arith.divui(row, size)
    return [row, *reversed(index)]
