"""A library's functions as the manifest states them: each function's spec (inputs,
outputs, gradient kernel), its argument names, and its manifest entry with output
shapes as expressions over the arguments (shape_expr.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..autodiff.core import differentiable, vjp
from ..graph.basic import Constant, Variable, as_tensor_variable, free_inputs
from ..graph.shared import SharedVariable, with_default_updates
from ..ops.creation import zeros_like
from ..runtime.kernel import MAX_PARAMETERS
from ..runtime.schema import MAX_EXPRESSION_DEPTH, is_argument_name
from ..targets.symbols import entry_symbol
from .shape_expr import ExprBuilder, NotExpressible, depth, render


@dataclass
class FunctionSpec:
    """One function of a library: its name, inputs and outputs (and, for a gradient
    kernel, the function it differentiates and the names of `grad_wrt`).

    Shared variables are implicit: `shared` (those the outputs and updates read) are
    the last entries of `inputs`, after the caller's; the new values of `updated`
    are the last entries of `outputs`, after the caller's (`n_outputs` of them)."""
    name: str
    inputs: list[Variable]
    outputs: list[Variable]
    unpack: bool = False
    forward: "FunctionSpec | None" = None
    wrt: list[str] = field(default_factory=list)
    shared: list[SharedVariable] = field(default_factory=list)
    updated: list[SharedVariable] = field(default_factory=list)
    n_outputs: int = 0

    @property
    def n_inputs(self) -> int:
        """The caller's inputs (the shared variables follow them)."""
        return len(self.inputs) - len(self.shared)


def _check_depth(function: str, j: int, out: Variable, shape: list[dict]) -> None:
    """The runtime reads shape expressions up to MAX_EXPRESSION_DEPTH levels: refuse a
    deeper one here, naming the output, rather than build a library no runtime loads."""
    deepest = max((depth(e) for e in shape), default=0)
    if deepest > MAX_EXPRESSION_DEPTH:
        raise ValueError(f"{function}: the shape of output {j} ({out.describe()}) is an expression "
                         f"{deepest} levels deep; libraries support at most {MAX_EXPRESSION_DEPTH} "
                         "(compute n_steps or the sizes with fewer chained scalar ops)")


def make_spec(name: str, inputs: Sequence[Variable], outputs: Any, updates: Any = None,
              default_updates: bool = True) -> FunctionSpec:
    """The spec of one function; `updates` as `function` takes them (a dict, OrderedDict
    or list of pairs), and with `default_updates` every shared variable's
    `default_update` that no explicit update replaces (random streams advance)."""
    check_name(name, "function name")
    if isinstance(inputs, Variable) or not isinstance(inputs, (list, tuple)):
        raise TypeError(f"{name}: inputs must be a list of variables")
    seen: set[Variable] = set()
    for i, v in enumerate(inputs):
        if not isinstance(v, Variable) or isinstance(v, Constant):
            raise TypeError(f"{name}: inputs[{i}] must be a symbolic input variable, got {v!r}")
        if v.owner is not None:
            raise TypeError(f"{name}: inputs[{i}] ({v.describe()}) is computed from other variables; "
                            "inputs must be variables made with at.scalar(), at.vector(), ...")
        if isinstance(v, SharedVariable):
            raise TypeError(f"{name}: inputs[{i}] ({v.describe()}) is a shared variable; shared variables "
                            "are implicit inputs: leave it out of the inputs list")
        if v in seen:
            raise ValueError(f"{name}: inputs[{i}] ({v.describe()}) is listed twice")
        seen.add(v)
    unpack = not isinstance(outputs, (list, tuple))
    outs = [outputs] if unpack else list(outputs)
    for i, o in enumerate(outs):
        if not isinstance(o, Variable):
            raise TypeError(f"{name}: outputs[{i}] must be a symbolic variable, got {type(o).__name__}")
    pairs = update_pairs(name, updates)
    if default_updates:
        pairs = with_default_updates(outs, pairs)
    if not outs and not pairs:
        raise ValueError(f"{name}: needs at least one output or update")
    free = free_inputs(outs + [u for _, u in pairs])
    missing = [v for v in free if v not in seen and not isinstance(v, SharedVariable)]
    if missing:
        raise ValueError(f"{name}: the outputs depend on {missing[0].describe()}, which is not among "
                         "the inputs; add it to the inputs list")
    shared = [v for v in free if isinstance(v, SharedVariable)]
    all_inputs, all_outputs = list(inputs) + shared, outs + [u for _, u in pairs]
    if len(all_inputs) + len(all_outputs) + 1 > MAX_PARAMETERS:
        raise ValueError(f"{name}: {len(all_inputs)} inputs and {len(all_outputs)} outputs (shared variables "
                         f"and updates included); a function takes at most {MAX_PARAMETERS - 1} together "
                         "(pass stacked arrays instead of many scalars)")
    return FunctionSpec(name, all_inputs, all_outputs, unpack, shared=shared,
                        updated=[s for s, _ in pairs], n_outputs=len(outs))


def update_pairs(name: str, updates: Any) -> list[tuple[SharedVariable, Variable]]:
    """`function`'s updates as (shared variable, new value) pairs, each checked: the new
    value must have the variable's dtype and rank (Aesara: the same type)."""
    if updates is None:
        return []
    if isinstance(updates, dict):
        items = list(updates.items())
    elif isinstance(updates, (list, tuple)):
        items = list(updates)
    else:
        raise TypeError(f"{name}: updates must be a dict, an OrderedDict or a list of (shared variable, "
                        f"new value) pairs, got {type(updates).__name__}")
    pairs: list[tuple[SharedVariable, Variable]] = []
    for i, item in enumerate(items):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TypeError(f"{name}: updates[{i}] must be a (shared variable, new value) pair, got {item!r}")
        var, value = item
        if not isinstance(var, SharedVariable):
            raise TypeError(f"{name}: updates[{i}]: {var!r} is not a shared variable; only shared variables "
                            "(scanaot.shared) can be updated")
        if any(var is other for other, _ in pairs):
            raise ValueError(f"{name}: {var.describe()} is updated twice")
        pairs.append((var, _update_value(name, var, value)))
    return pairs


def _update_value(name: str, var: SharedVariable, value: Any) -> Variable:
    new = as_tensor_variable(value)
    bad_bcast = any(b and not nb for b, nb in zip(var.broadcastable, new.broadcastable))
    if new.dtype != var.dtype or new.ndim != var.ndim or bad_bcast:
        raise TypeError(f"{name}: an update must have the type of its shared variable: {var.describe()} "
                        f"{var.type}, update {new.describe()} {new.type}")
    return new


def vjp_spec(spec: FunctionSpec, grad_wrt: Sequence[Variable]) -> FunctionSpec:
    """The gradient kernel of `spec`: (inputs..., cotangents...) -> grads in `grad_wrt` order."""
    wrt = [grad_wrt] if isinstance(grad_wrt, Variable) else list(grad_wrt)
    for i, w in enumerate(wrt):
        if w not in spec.inputs:
            raise ValueError(f"{spec.name}: grad_wrt[{i}] ({w!r}) is neither one of the inputs nor a shared "
                             "variable the outputs read")
        if not differentiable(w):
            raise TypeError(f"{spec.name}: grad_wrt[{i}] ({w.describe()}) is not a float input")
    names = input_names(spec)
    out_names = arg_names(spec.outputs, "out", names)
    outputs = spec.outputs[:spec.n_outputs]  # updates get no cotangent
    cotangents, cot_vars = [], []
    for j, out in enumerate(outputs):
        if differentiable(out):
            cot = out.type(name=f"cot_{out_names[j]}")
            cotangents.append(cot)
            cot_vars.append(cot)
        else:
            cotangents.append(None)
    grads = vjp(outputs, cotangents, wrt)
    grads = [zeros_like(w) if g is None else g for w, g in zip(wrt, grads)]
    for g, w in zip(grads, wrt):
        g.name = f"grad_{names[spec.inputs.index(w)]}"
    # the forward's shared variables stay implicit; a gradient kernel advances no stream
    kernel = make_spec(f"{spec.name}_vjp", spec.inputs[:spec.n_inputs] + cot_vars, grads, default_updates=False)
    kernel.forward, kernel.wrt = spec, [names[spec.inputs.index(w)] for w in wrt]
    return kernel


_LIBRARY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*")


def check_name(name: object, what: str) -> str:
    """Library and function names become C symbols (`scanaot_LIBRARY__FUNCTION`):
    ASCII letters, digits and single underscores, starting with a letter, so no two
    (library, function) pairs and no CPU variant can spell the same symbol."""
    if not isinstance(name, str) or len(name) > 100 or _LIBRARY_NAME.fullmatch(name) is None:
        raise ValueError(f"{what} {name!r} must be an ASCII C identifier of at most 100 characters that "
                         "starts with a letter and has no double or trailing underscore")
    return name


def arg_names(inputs: Sequence[Variable], prefix: str = "arg", taken: Sequence[str] = ()) -> list[str]:
    """Argument names: the variables' names where they can name a C parameter in the
    header and a keyword of the runtime's calls (runtime.schema.is_argument_name:
    `lambda` can, `int` and `out` cannot) and are unique, else argN (made unique).
    Outputs are named the same way (`prefix` out, after the arguments' `taken` names)."""
    names: list[str] = list(taken)
    for i, v in enumerate(inputs):
        candidate = v.name if is_argument_name(v.name) and v.name not in names else f"{prefix}{i}"
        while candidate in names:
            candidate += "_"
        names.append(candidate)
    return names[len(taken):]


def input_names(spec: FunctionSpec) -> list[str]:
    """The manifest's argument names; a function with shared variables is called with
    `state=`, so none of its arguments may be named `state`."""
    stateful = bool(spec.shared or spec.updated)
    return arg_names(spec.inputs, taken=("state",) if stateful else ())


def function_manifest(spec: FunctionSpec, library: str, shared_names: dict[int, str] | None = None) -> dict:
    """One function's manifest entry. `shared_names`: id(shared variable) -> its name in
    the library; its shared arguments carry `"shared": name`, its update outputs
    `"updates": name` (both last, after the caller's)."""
    shared_names = shared_names or {id(v): f"shared{v.number}" for v in spec.shared + spec.updated}
    names = input_names(spec)
    builder = ExprBuilder(spec.inputs)
    args = [{"name": n, "dtype": v.dtype, "ndim": v.ndim,
             "shape": [{"const": 1} if b else {"dim": [i, axis]} for axis, b in enumerate(v.broadcastable)]}
            for i, (n, v) in enumerate(zip(names, spec.inputs))]
    outputs = []
    out_names = arg_names(spec.outputs, "out", names)
    for j, out in enumerate(spec.outputs):
        try:
            shape, bounded = builder.output_shape(out)
        except NotExpressible as err:
            raise ValueError(f"{spec.name}: the shape of output {j} ({out.describe()}) cannot be "
                             f"computed from the arguments before the call: it depends on {err}") from None
        _check_depth(spec.name, j, out, shape)
        outputs.append({"name": out_names[j],
                        "dtype": out.dtype, "ndim": out.ndim, "shape": shape, "bounded": bounded,
                        "shape_text": [render(e, names) for e in shape]})
    # a relation too deep to state is still checked by the kernel itself (a status)
    constraints = [c for c in builder.constraints(spec.outputs)
                   if max(depth(e) for e in c["args"]) <= MAX_EXPRESSION_DEPTH]
    for c in constraints:
        c["text"] = [render(e, names) for e in c["args"]]
    for arg, var in zip(args[spec.n_inputs:], spec.shared):
        arg["shared"] = shared_names[id(var)]
    for out, var in zip(outputs[spec.n_outputs:], spec.updated):
        out["updates"] = shared_names[id(var)]
    return {"name": spec.name, "symbol": entry_symbol(library, spec.name), "workspace_bytes": 0,
            "args": args, "outputs": outputs, "constraints": constraints,
            "dims_length": max(1, sum(o.ndim for o in spec.outputs))}
