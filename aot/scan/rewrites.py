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

from ..graph.basic import Constant, Scope, Variable, clone_replace, int_constant, toposort
from ..ops.indexing import getitem
from ..ops.join import join
from ..ops.linalg import Dot, dot
from ..ops.shape import shape_i


def _invariant(outputs: list[Variable], varying: list[Variable], params: list[Variable]) -> set[Variable]:
    """What depends only on the step's non-sequences and constants."""
    invariant: set[Variable] = set(params)
    for node in toposort(outputs, stop=set(varying) | set(params)):
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


def hoist_input_projections(outputs: list[Variable], seqs: list, seq_args: list[Variable],
                            varying: list[Variable], inner_params: list[Variable],
                            outer_params: list[Variable], scope: int) -> tuple[list[Variable], list, list[Variable]]:
    """hoist-input-projections: `dot(x_t, W)` of a sequence's element with an invariant
    `W` becomes one product of the whole sequence before the loop (a large GEMM instead
    of one small one per step, as cuDNN and a good C programmer do), read by the step as
    a new sequence with the same tap. Only for loops that run over the whole sequence
    (no `until`, no `n_steps`): the caller checks that.

    Returns the rewritten outputs, the new (outer sequence, taps) pairs and their step
    arguments (to follow the existing sequences' arguments), made in the step's `scope`."""
    where: dict[Variable, tuple[int, int]] = {}
    k = 0
    for s, (_, taps) in enumerate(seqs):
        for tap in taps:
            where[seq_args[k]] = (s, tap)
            k += 1
    invariant = _invariant(outputs, varying, inner_params)
    groups: dict[tuple, list] = {}
    for node in toposort(outputs, stop=set(varying) | set(inner_params)):
        left, right = node.inputs if isinstance(node.op, Dot) else (None, None)
        if left in where and right in invariant and right.ndim == 2:
            groups.setdefault((left, right), []).append(node)
    if not groups:
        return outputs, [], []
    to_outer = dict(zip(inner_params, outer_params))
    replace, new_seqs, new_args = {}, [], []
    for (left, right), nodes in groups.items():
        s, tap = where[left]
        outer_right = clone_replace([right], to_outer)[0]
        projected = dot(seqs[s][0], outer_right)
        with Scope(scope):
            step_value = nodes[0].outputs[0].type(name=f"{left.name or 'x_t'} @ W")
        new_seqs.append((projected, [tap]))
        new_args.append(step_value)
        for node in nodes:
            replace[node.outputs[0]] = step_value
    return clone_replace(outputs, replace), new_seqs, new_args
