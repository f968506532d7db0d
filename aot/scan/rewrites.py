"""merge-shared-operand-dots: products in a step that share their varying operand
become one wider product (the scan guide's "Graph Rewrites" advice for the LSTM).

`dot(h, U_i)`, `dot(h, U_f)`, `dot(h, U_o)`, `dot(h, U_g)` with loop-invariant
`U_*` become column slices of `dot(h, join(1, U_i, U_f, U_o, U_g))`; the join is
loop-invariant, so the loop hoists it and each step runs one matmul of width 4H
instead of four of width H. The four-matmul and merged-weight LSTMs then compile
to the same loop. Only products of one left operand (a step argument or a value
the step computes) with invariant 2-d right operands of one dtype are merged; the
result is the same numbers (each column is the same dot product).
"""
from __future__ import annotations

from ..graph.basic import Constant, Variable, clone_replace, int_constant, toposort
from ..ops.indexing import getitem
from ..ops.join import join
from ..ops.linalg import Dot, dot
from ..ops.shape import shape_i


def _invariant(outputs: list[Variable], varying: list[Variable], params: list[Variable]) -> set[Variable]:
    """What depends only on the step's non-sequences and constants (a nested loop's
    results count as varying: the loop itself is not moved)."""
    invariant: set[Variable] = set(params)
    for node in toposort(outputs, stop=set(varying) | set(params)):
        if node.op.stacks_steps:
            continue
        if all(v in invariant or isinstance(v, Constant) for v in node.inputs):
            invariant.update(node.outputs)
    return invariant


def _groups(outputs: list[Variable], invariant: set[Variable], stop: set[Variable]) -> list[list]:
    """Dot nodes sharing a varying left operand, each with an invariant 2-d right operand."""
    by_left: dict[tuple, list] = {}
    for node in toposort(outputs, stop=stop):
        if not isinstance(node.op, Dot):
            continue
        left, right = node.inputs
        if left in invariant or right not in invariant or right.ndim != 2 or left.ndim not in (1, 2):
            continue
        by_left.setdefault((left, right.dtype), []).append(node)
    return [nodes for nodes in by_left.values() if len({id(n.inputs[1]) for n in nodes}) > 1]


def merge_shared_operand_dots(outputs: list[Variable], varying: list[Variable],
                              params: list[Variable]) -> list[Variable]:
    """The step's outputs with each group of products merged into one (see above)."""
    invariant = _invariant(outputs, varying, params)
    groups = _groups(outputs, invariant, set(varying) | set(params))
    if not groups:
        return outputs
    replace: dict[Variable, Variable] = {}
    for nodes in groups:
        rights = list(dict.fromkeys(n.inputs[1] for n in nodes))  # distinct weights, in order
        left = nodes[0].inputs[0]
        merged = dot(left, join(1, *rights))
        start, columns = int_constant(0), {}
        for right in rights:
            stop = start + shape_i(right, 1)
            columns[right] = (start, stop)
            start = stop
        for node in nodes:
            lo, hi = columns[node.inputs[1]]
            key = (slice(None), slice(lo, hi)) if left.ndim == 2 else slice(lo, hi)
            replace[node.outputs[0]] = getitem(merged, key)
    return clone_replace(outputs, replace)


def hoist_invariants(outputs: list[Variable], varying: list[Variable], inner_params: list[Variable],
                     outer_params: list[Variable]):
    """Move the step's loop-invariant work (what depends only on non-sequences and
    constants, such as W.T) out of the loop: it is computed once before the loop and
    passed in as an extra non-sequence. Returns the rewritten outputs and the new
    (inner, outer) non-sequences."""
    invariant = _invariant(outputs, varying, inner_params)
    frontier: list[Variable] = []
    for node in toposort(outputs, stop=set(varying) | set(inner_params)):
        if all(v in invariant for v in node.outputs):
            continue
        for v in node.inputs:
            if v in invariant and v.owner is not None and v not in frontier and v not in inner_params:
                frontier.append(v)
    frontier += [v for v in outputs if v in invariant and v.owner is not None and v not in frontier]
    frontier = [v for v in frontier if v.ndim >= 1]  # scalars cost nothing to recompute
    if not frontier:
        return outputs, [], []
    outer = clone_replace(frontier, dict(zip(inner_params, outer_params)))
    inner = [v.type(name=v.name) for v in frontier]
    return clone_replace(outputs, dict(zip(frontier, inner))), inner, outer
