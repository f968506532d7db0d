"""The scan ops: `ScanOp`, a traced loop (one node of the outer graph holding the
step function's graph), and `FinalValue`, a loop's last state. Their emission is in
emit.py and their VJPs in grad.py, registered in the same tables as every op."""
from __future__ import annotations

from typing import Any, Sequence

from ..graph.basic import Apply, Op, TensorType, Variable


class ScanOp(Op):
    """A traced loop. Node inputs: [n_steps, *sequences, *initial states,
    *per-step dims of outputs without a state, *non-sequences (captured last)]."""

    def __init__(self, *, name, seq_taps, out_kinds, out_taps, inner_inputs, inner_outputs,
                 condition, n_params, collect_ranks, go_backwards, truncate_gradient):
        self.name = name
        self.seq_taps = seq_taps              # list[list[int]] per sequence
        self.out_kinds = out_kinds            # "state" | "collect" per output
        self.out_taps = out_taps              # list[list[int]] (empty for collect)
        self.inner_inputs = inner_inputs      # fn's arguments, in order
        self.inner_outputs = inner_outputs    # one per output
        self.condition = condition            # until condition or None
        self.n_params = n_params
        self.collect_ranks = collect_ranks    # rank of each collected output's step value
        self.go_backwards = go_backwards
        self.truncate_gradient = truncate_gradient

    stacks_steps = True

    def __str__(self) -> str:
        return f"scan{{{self.name}}}" if self.name else "scan"

    @property
    def n_seqs(self) -> int:
        return len(self.seq_taps)

    @property
    def n_states(self) -> int:
        return self.out_kinds.count("state")

    def split_inputs(self, inputs: Sequence[Any]) -> dict[str, list]:
        """Node inputs by role."""
        i = 1
        parts = {"n_steps": inputs[0]}
        for role, count in (("sequences", self.n_seqs), ("initial", self.n_states),
                            ("collect_dims", sum(self.collect_ranks)), ("params", self.n_params)):
            parts[role] = list(inputs[i:i + count])
            i += count
        return parts

    def make_node(self, *inputs: Variable) -> Apply:
        types_ = [TensorType(v.dtype, (False,) + v.broadcastable) for v in self.inner_outputs]
        return Apply(self, inputs, types_)

    def infer_shape(self, node, input_shapes):
        parts = self.split_inputs(node.inputs)
        shapes = self.split_inputs(input_shapes)
        out, state_i, collect_i, dims_i = [], 0, 0, 0
        for kind, taps, var in zip(self.out_kinds, self.out_taps, node.outputs):
            # with until, the number of steps is known only when the loop has run;
            # the per-step dims are known before
            n = parts["n_steps"] if self.condition is None else StepsRun()(var)
            if kind == "state":
                init_shape = shapes["initial"][state_i]
                out.append([n] + list(init_shape if taps == [-1] else init_shape[1:]))
                state_i += 1
            else:
                rank = self.collect_ranks[collect_i]
                out.append([n] + parts["collect_dims"][dims_i:dims_i + rank])
                collect_i += 1
                dims_i += rank
        return out


class FinalValue(Op):
    """The last row of a stacked tensor, or `initial` when it has no rows.

    What a loop's final state is, including after zero steps; gradients use it
    for the last window and accumulators of their reversed scans."""

    def make_node(self, stacked: Variable, initial: Variable) -> Apply:
        if stacked.ndim != initial.ndim + 1 or stacked.dtype != initial.dtype:
            raise TypeError(f"final value: {stacked.describe()} is not a stack of {initial.describe()}")
        return Apply(self, [stacked, initial], [initial.type])

    def infer_shape(self, node, input_shapes):
        return [list(input_shapes[1])]


class StepsRun(Op):
    """How many steps an `until` loop ran: the length of one of its results.

    Its shape rule gives this as dim 0 (the per-step dims are known before the loop
    runs). Not `shape_i`, whose shape-rule lookup would find this dim again."""

    def make_node(self, stacked: Variable) -> Apply:
        if stacked.ndim < 1:
            raise TypeError(f"steps run: {stacked.describe()} is not a stack of steps")
        return Apply(self, [stacked], [TensorType("int64", [])])

    def infer_shape(self, node, input_shapes):
        return [[]]
