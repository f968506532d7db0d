"""`scan`: trace a Python step function into one Scan node of the graph.

Semantics, as a Python reference loop (one state with taps [-1], one sequence):

    def scan(fn, seq, init, params, n_steps):
        state, out = init, []
        for t in range(min(n_steps, len(seq))):
            state = fn(seq[t], state, *params)
            out.append(state)
        return stack(out)

The step function's arguments come in the guide's order: every tap of every
sequence, every tap of every state (outputs with an initial value), then the
non-sequences. Variables the step function uses without receiving them
(free variables) are captured as extra non-sequences.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

from ..graph import dtypes
from ..graph.basic import (Constant, Scope, TensorType, Variable, as_tensor_variable, clone_replace)
from ..graph.shared import OrderedUpdates, SharedVariable, with_default_updates
from ..ops.elemwise import cast, minimum
from ..ops.shape import ShapeI, shape_i
from ..ops.shape_inference import shape_of
from .op import FinalValue, ScanOp
from .rewrites import hoist_invariants, merge_shared_operand_dots
from .utils import until


class ScanError(ValueError):
    """A scan whose arguments or step function do not fit together."""


def _as_list(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _normalize_sequence(i: int, seq: Any) -> tuple[Variable, list[int]]:
    taps = [0]
    if isinstance(seq, dict):
        if "input" not in seq:
            raise ScanError(f"sequences[{i}]: a dict needs the key 'input'")
        taps = list(seq.get("taps", [0]) or [0])
        seq = seq["input"]
    var = as_tensor_variable(seq)
    if var.ndim == 0:
        raise ScanError(f"sequences[{i}] is a scalar ({var.describe()}); a sequence needs a leading "
                        "dim to iterate over")
    if not all(isinstance(t, (int, np.integer)) for t in taps):
        raise ScanError(f"sequences[{i}]: taps must be ints, got {taps}")
    if len(set(taps)) != len(taps):
        raise ScanError(f"sequences[{i}]: taps must be distinct, got {taps}")
    return var, [int(t) for t in taps]


def _normalize_output(i: int, info: Any) -> tuple[Variable | None, list[int]]:
    if info is None:
        return None, []
    if isinstance(info, dict):
        if info.get("initial") is None:
            if info.get("taps"):
                raise ScanError(f"outputs_info[{i}]: taps {info['taps']} need an 'initial' value")
            return None, []
        taps = list(info.get("taps", [-1]) or [])
        init = as_tensor_variable(info["initial"])
        if not taps:
            raise ScanError(f"outputs_info[{i}]: an output with an initial value needs at least one tap")
    else:
        init, taps = as_tensor_variable(info), [-1]
    if not all(isinstance(t, (int, np.integer)) and t < 0 for t in taps):
        raise ScanError(f"outputs_info[{i}]: output taps must be negative ints (past values), got {taps}")
    if len(set(taps)) != len(taps):
        raise ScanError(f"outputs_info[{i}]: taps must be distinct, got {taps}")
    if taps != [-1] and init.ndim == 0:
        raise ScanError(
            f"outputs_info[{i}]: taps {taps} need an initial block with a leading dim of at least "
            f"{-min(taps)} rows (one per past step), got the scalar {init.describe()}")
    return init, [int(t) for t in taps]


def _step_results(ret: Any, n_expected: int | None) -> tuple[list[Variable], Variable | None, OrderedUpdates]:
    """Split what fn returned into outputs, the until condition and the updates of
    shared variables: outputs and an updates dict in either order, `until` last."""
    if isinstance(ret, until):
        raise ScanError("the step function returned only an until(...) condition; it must return "
                        "its outputs too, with until(...) last")
    items = list(ret) if isinstance(ret, (list, tuple)) else [ret]
    condition, updates, outputs = None, OrderedUpdates(), []
    if items and isinstance(items[-1], until):
        condition = items.pop().condition
    for pos, item in enumerate(items):
        if isinstance(item, until):
            raise ScanError("until(...) must be the last thing the step function returns")
        if isinstance(item, dict):
            _merge_updates(updates, item)
        elif isinstance(item, (list, tuple)):
            outputs.extend(_as_output(len(outputs), v) for v in item)
        else:
            outputs.append(_as_output(pos, item))
    if n_expected is not None and len(outputs) != n_expected:
        raise ScanError(f"the step function returned {len(outputs)} output(s) but outputs_info "
                        f"describes {n_expected}")
    return outputs, condition, updates


def _as_output(pos: int, item: Any) -> Variable:
    if isinstance(item, until):
        raise ScanError("until(...) must be the last thing the step function returns")
    try:
        return as_tensor_variable(item)
    except TypeError:
        raise ScanError(f"the step function's output {pos} is a {type(item).__name__}, "
                        "expected a tensor variable or a number") from None


def _merge_updates(updates: OrderedUpdates, given: dict) -> None:
    for var, value in given.items():
        if not isinstance(var, SharedVariable):
            raise ScanError(f"the step function's updates must be keyed by shared variables, got {var!r}")
        if var in updates:
            raise ScanError(f"the step function updates {var.describe()} twice")
        updates[var] = as_tensor_variable(value)


def _updates_as_states(results: list[Variable], condition: Variable | None, updates: OrderedUpdates,
                       fn_name: str) -> tuple[list[Variable], Variable | None, list[Variable], list[Variable]]:
    """Each updated shared variable becomes a loop state: the step reads its value at
    the previous step (its initial value is the variable's), and the scan's update is
    its last value. Returns the rewritten outputs (the new values appended), the
    condition, the states' step arguments and the shared variables, in order."""
    shared = list(updates)
    if not shared:
        return results, condition, [], []
    inner = [TensorType(v.dtype, v.broadcastable)(name=f"{v.name or 'shared'}[t-1]") for v in shared]
    graph = results + list(updates.values()) + ([condition] if condition is not None else [])
    replaced = clone_replace(graph, dict(zip(shared, inner)))
    new_values = replaced[len(results):len(results) + len(shared)]
    for var, value in zip(shared, new_values):
        bad_bcast = any(b and not nb for b, nb in zip(var.broadcastable, value.broadcastable))
        if value.dtype != var.dtype or value.ndim != var.ndim or bad_bcast:
            raise ScanError(f"{fn_name} updates {var.describe()} {var.type} with {value.describe()} "
                            f"{value.type}; an update must have its shared variable's type")
    cond = replaced[-1] if condition is not None else None
    return replaced[:len(results)] + new_values, cond, inner, shared


def _captured(outputs: Sequence[Variable], scope: int, explicit: set[Variable]) -> list[Variable]:
    """Variables from outside the step function that its outputs use (free variables)."""
    found: list[Variable] = []
    seen: set[Variable] = set()
    stack = list(outputs)
    while stack:
        v = stack.pop()
        if v in seen or v in explicit or isinstance(v, Constant):
            continue
        seen.add(v)
        if v.scope != scope:
            found.append(v)
        elif v.owner is None:
            raise ScanError(f"the step function uses {v.describe()}, an input variable created inside "
                            "it; create inputs outside and pass them as non_sequences")
        else:
            stack.extend(v.owner.inputs)
    return sorted(found, key=lambda v: v.uid)


def _state_output(i: int, out: Variable, tap_type: TensorType, fn_name: str) -> Variable:
    """Check a state's new value against its initial value's type (the guide's pitfall)."""
    if out.ndim != tap_type.ndim:
        raise ScanError(f"output {i} of {fn_name} has {out.ndim} dims but its initial state "
                        f"gives {tap_type.ndim}: the initial value must have the shape of one step's output")
    if out.dtype != tap_type.dtype:
        if not np.can_cast(out.dtype, tap_type.dtype, "safe"):
            raise ScanError(
                f"output {i} of {fn_name} ({out.describe()}) has dtype {out.dtype} but its initial "
                f"state has dtype {tap_type.dtype}: storing it would be an implicit downcast. Give the "
                f"initial state dtype {out.dtype}, e.g. at.as_tensor_variable(np.asarray(0, '{out.dtype}'))")
        out = cast(out, tap_type.dtype)
    _check_broadcast(i, out, tap_type, fn_name)
    return out


def _check_broadcast(i: int, out: Variable, tap_type: TensorType, fn_name: str) -> None:
    """A state dim fixed to length 1 (broadcastable) cannot take a new value whose dim
    may have any length (Aesara raises a TypeError here too). The other way round
    fits: a length-1 value is one value of a dim of any length."""
    bad = [a for a, (s, o) in enumerate(zip(tap_type.broadcastable, out.broadcastable)) if s and not o]
    if bad:
        raise ScanError(
            f"output {i} of {fn_name} ({out.describe()}) has broadcast pattern {tuple(out.broadcastable)} "
            f"but its initial state has {tuple(tap_type.broadcastable)}: dim {bad[0]} of the state is "
            "fixed to length 1 (as by a constant or a shape=(1,) input) and the step's value may have any "
            "length. Give the initial state the step's pattern (a dim that is not a constant 1, as in "
            "at.zeros((n,)) with a symbolic n, or an input with shape=(None,)), or make the step "
            "return a length-1 dim (Aesara: at.unbroadcast / at.specify_shape)")


def scan(fn: Callable, sequences: Any = None, outputs_info: Any = None, non_sequences: Any = None,
         n_steps: Any = None, truncate_gradient: int = -1, go_backwards: bool = False,
         mode: Any = None, name: str | None = None, profile: Any = False, allow_gc: Any = None,
         strict: bool = False, return_list: bool = False):
    """Aesara's `scan`. Returns `(outputs, updates)`: `updates` maps each shared variable
    the step function updated (or whose `default_update` it used) to its value after the
    loop; pass it to `function(..., updates=updates)`."""
    seqs = [_normalize_sequence(i, s) for i, s in enumerate(_as_list(sequences))]
    outs_info = _as_list(outputs_info)
    outs = [_normalize_output(i, o) for i, o in enumerate(outs_info)]
    params = [as_tensor_variable(p) for p in _as_list(non_sequences)]
    fn_name = getattr(fn, "__name__", "fn")
    if not seqs and n_steps is None:
        raise ScanError("scan needs sequences or n_steps to know how many steps to run")

    with Scope() as scope:
        inner_args: list[Variable] = []
        for i, (seq, taps) in enumerate(seqs):
            for tap in taps:
                inner_args.append(TensorType(seq.dtype, seq.broadcastable[1:])(
                    name=f"{seq.name or f'sequences[{i}]'}[t{tap:+d}]"))
        state_types: list[TensorType] = []
        for i, (init, taps) in enumerate(outs):
            if init is None:
                continue
            tap_type = init.type if taps == [-1] else TensorType(init.dtype, init.broadcastable[1:])
            state_types.append(tap_type)
            for tap in taps:
                inner_args.append(tap_type(name=f"{init.name or f'outputs_info[{i}]'}[t{tap:+d}]"))
        inner_params = _inner_params(params)
        inner_args.extend(inner_params)
        _check_arity(fn, fn_name, inner_args)
        ret = fn(*inner_args)
        results, condition, updates = _step_results(ret, len(outs) if outs else None)
        updates = OrderedUpdates(with_default_updates(results + ([condition] if condition is not None else []),
                                                      list(updates.items())))
        n_user = len(results)  # the updated shared variables' states follow them (in this step's scope)
        results, condition, update_args, updated = _updates_as_states(results, condition, updates, fn_name)
    inner_args, seqs, outs = _in_tap_order(inner_args, seqs, outs)

    if not outs:
        outs = [(None, [])] * n_user
    kinds = ["collect" if init is None else "state" for init, _ in outs]
    state_i = 0
    for i, kind in enumerate(kinds):
        if kind == "state":
            results[i] = _state_output(i, results[i], state_types[state_i], fn_name)
            state_i += 1
    if updated:  # their step arguments follow the user's states, before the non-sequences
        split = len(inner_args) - len(inner_params)
        inner_args = inner_args[:split] + update_args + inner_args[split:]
        outs = outs + [(v, [-1]) for v in updated]
        kinds = kinds + ["state"] * len(updated)

    explicit = set(inner_args)
    captured = _captured(results + ([condition] if condition is not None else []), scope, explicit)
    if strict and captured:
        raise ScanError(f"strict=True but {fn_name} uses {captured[0].describe()} without receiving "
                        "it; pass it in non_sequences")
    n = _number_of_steps(seqs, n_steps)
    # Captured variables stand for themselves inside the step: the emitter binds them
    # to the step function's trailing parameters.
    outer_params = params + captured
    inner_param_vars = inner_params + captured
    everything = results + ([condition] if condition is not None else [])
    with Scope(scope):
        everything = merge_shared_operand_dots(everything, inner_args[:len(inner_args) - len(inner_params)],
                                               inner_param_vars)
    everything, hoisted_inner, hoisted_outer = hoist_invariants(
        everything, inner_args[:len(inner_args) - len(inner_params)], inner_param_vars, outer_params)
    results = everything[:len(results)]
    condition = everything[-1] if condition is not None else None
    inner_param_vars = inner_param_vars + hoisted_inner
    outer_params = outer_params + hoisted_outer
    collect_dims: list[Variable] = []
    collect_ranks: list[int] = []
    for i, kind in enumerate(kinds):
        if kind == "collect":
            dims = _hoisted_shape(i, results[i], seqs, outs, inner_args, inner_param_vars,
                                  outer_params, scope)
            collect_dims.extend(dims)
            collect_ranks.append(len(dims))

    op = ScanOp(name=name, seq_taps=[t for _, t in seqs], out_kinds=kinds,
                out_taps=[t for _, t in outs], inner_inputs=inner_args[:len(inner_args) - len(inner_params)]
                + inner_param_vars, inner_outputs=results, condition=condition,
                n_params=len(outer_params), collect_ranks=collect_ranks,
                go_backwards=bool(go_backwards), truncate_gradient=truncate_gradient)
    inits = [init for init, _ in outs if init is not None]
    node = op.make_node(n, *[s for s, _ in seqs], *inits, *collect_dims, *outer_params)
    stacked, finals = node.outputs[:n_user], node.outputs[n_user:]
    if name:
        for var in stacked:
            var.name = name
    new_updates = OrderedUpdates((v, FinalValue()(last, v)) for v, last in zip(updated, finals))
    if return_list:
        return list(stacked), new_updates
    return (None if not stacked else stacked[0] if len(stacked) == 1 else stacked), new_updates


def _inner_params(params: list[Variable]) -> list[Variable]:
    """What the step receives for the non-sequences: the outer variables themselves, as
    in Aesara (its tutorial's Jacobian takes `grad(y[i], x)` inside the step, which
    needs the outer graph of y); the emitter binds them to the step's trailing
    parameters, as it does free variables. Constants and repeated variables get an
    inner copy, since one variable can bind one parameter only."""
    inner: list[Variable] = []
    for p in params:
        if isinstance(p, Constant) or p in inner:
            inner.append(TensorType(p.dtype, p.broadcastable)(name=p.name))
        else:
            inner.append(p)
    return inner


def _in_tap_order(inner_args: list[Variable], seqs: list, outs: list):
    """The step receives each input's taps in the order the user listed them (Aesara's
    rule); the loop reads them in increasing order. Reorder the traced arguments to
    match, so `taps=[-1, -2]` means what it says."""
    ordered: list[Variable] = []
    k = 0
    new_seqs, new_outs = [], []
    for group, target in ((seqs, new_seqs), (outs, new_outs)):
        for var, taps in group:
            if var is None:
                target.append((var, taps))
                continue
            pairs = sorted(zip(taps, inner_args[k:k + len(taps)]), key=lambda p: p[0])
            ordered.extend(v for _, v in pairs)
            target.append((var, [t for t, _ in pairs]))
            k += len(taps)
    return ordered + inner_args[k:], new_seqs, new_outs


def _check_arity(fn: Callable, fn_name: str, args: list[Variable]) -> None:
    """A step function that cannot take scan's arguments is an error that lists them."""
    try:
        inspect.signature(fn).bind(*args)
    except TypeError:
        names = ", ".join(repr(a) for a in args) or "(none)"
        raise ScanError(f"{fn_name} cannot be called with the {len(args)} argument(s) scan passes, in "
                        f"this order: {names} (sequence taps, then state taps, then non_sequences)") from None
    except ValueError:
        pass  # no signature available (builtins): let the call itself fail


def _number_of_steps(seqs, n_steps) -> Variable:
    lengths = []
    for seq, taps in seqs:
        span = max(0, -min(taps)) + max(0, max(taps))
        lengths.append(shape_i(seq, 0) - span)
    if n_steps is not None:
        steps = as_tensor_variable(n_steps)
        if steps.ndim != 0 or not (dtypes.is_int(steps.dtype)):
            raise ScanError(f"n_steps must be an integer scalar, got {steps.describe()}")
        if isinstance(steps, Constant) and int(steps.data) < 0:
            raise ScanError(f"n_steps must not be negative, got {int(steps.data)}")
        lengths.append(cast(steps, "int64"))
    n = lengths[0]
    for other in lengths[1:]:
        n = minimum(n, other)
    return n


def _hoisted_shape(i, result, seqs, outs, inner_args, inner_params, outer_params, scope) -> list[Variable]:
    """The per-step shape of an output without a state, in terms of the scan's outer inputs."""
    dims = shape_of(result)
    outer_of: dict[Variable, tuple[Variable, int]] = {}
    k = 0
    for seq, taps in seqs:
        for _ in taps:
            outer_of[inner_args[k]] = (seq, 1)
            k += 1
    for init, taps in outs:
        if init is None:
            continue
        for _ in taps:
            outer_of[inner_args[k]] = (init, 0 if taps == [-1] else 1)
            k += 1
    replace = dict(zip(inner_params, outer_params))

    def hook(node, new_inputs):
        if isinstance(node.op, ShapeI) and node.inputs[0] in outer_of:
            outer, offset = outer_of[node.inputs[0]]
            return [shape_i(outer, node.op.axis + offset)]
        return None

    hoisted = clone_replace(dims, replace, hook)
    for d in hoisted:
        stack, seen = [d], set()
        while stack:
            v = stack.pop()
            if v in seen or isinstance(v, Constant):
                continue
            seen.add(v)
            if v.scope == scope and v.owner is None:
                raise ScanError(
                    f"output {i} has no initial state and its shape depends on the values of "
                    f"{v.describe()} inside the loop; scanaot needs its shape before the loop "
                    "runs: give it an initial state in outputs_info")
            if v.owner is not None:
                stack.extend(v.owner.inputs)
    return hoisted
