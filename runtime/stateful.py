"""Calling a function that reads or updates shared variables (numpy + ctypes only).

In the manifest a function's shared arguments come last (`"shared": NAME` on each)
and so do its update outputs (`"updates": NAME`). The caller passes only the other
arguments and gets only the other outputs; the values come from a `State`
(state.py; default: the library's `default_state`) and the updates go back to it,
all at once after the call succeeded, under the state's lock. Functions without
shared variables keep the plain `Kernel` and its generated path untouched.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .kernel import ArgumentError, ByPosition, Kernel
from .state import State


def is_stateful(spec: dict) -> bool:
    return any("shared" in a for a in spec["args"]) or any("updates" in o for o in spec["outputs"])


class StatefulKernel(Kernel):
    """A function with shared variables: `f(*args, state=None, out=None, **kwargs)`."""

    def __init__(self, spec: dict, handle: Any, path: Any):
        super().__init__(spec, handle, path)
        self.n_args = sum("shared" not in a for a in self.args)
        self.n_outputs = sum("updates" not in o for o in self.outputs)
        self.shared_names = [a["shared"] for a in self.args[self.n_args:]]
        self.updated_names = [o["updates"] for o in self.outputs[self.n_outputs:]]
        self.user_arg_names = self.arg_names[:self.n_args]
        self._user_by_position = ByPosition(self.user_arg_names)

    def __repr__(self) -> str:
        shared = f"; shared {', '.join(self.shared_names)}" if self.shared_names else ""
        return f"<kernel {self.name}({', '.join(self.user_arg_names)}{shared})>"

    def __call__(self, *args: Any, state: State | None = None, out: Sequence[np.ndarray] | None = None,
                 **kwargs: Any):
        """Call with the shared values of `state`, then store the updates in it.

        `out=`: buffers for the outputs that are not updates (update outputs are always
        new arrays, which the state then owns)."""
        if kwargs or len(args) != self.n_args:
            args = self._user_args(args, kwargs)
        st = self.state_of(state)
        with st.lock:
            values = st._read(self.shared_names)
            results = self.call_all(*args, *values) if out is None else self._with_out(args, values, out)
            results = list(results) if isinstance(results, tuple) else [results]
            st._store(self.updated_names, results[self.n_outputs:])
        mine = results[:self.n_outputs]
        return mine[0] if len(mine) == 1 else tuple(mine)

    def vjp(self, *args: Any, cotangents: Any = None, state: State | None = None, **kwargs: Any):
        """Gradients as `Kernel.vjp` gives them, at the shared values of `state`."""
        kernel = getattr(self, "_vjp", None)
        if kernel is None:
            raise ArgumentError(f"{self.name} has no gradient kernel: compile it with grad_wrt=[...]")
        args = self._user_args(args, kwargs) if kwargs or len(args) != self.n_args else args
        cots = self._cotangents(kernel, cotangents)
        st = self.state_of(state)
        with st.lock:
            values = self._bind(tuple(args) + tuple(st._read(self.shared_names)), {})
            self._check_cotangent_shapes(values, cots)
            values = [v.view(self._dtypes[i]) if v.dtype != self._dtypes[i] else v for i, v in enumerate(values)]
            extra = st._read(kernel.shared_names) if isinstance(kernel, StatefulKernel) else []
            return kernel.call_all(*values[:self.n_args], *cots, *extra)

    def state_of(self, state: State | None) -> State:
        """`state`, checked to belong to this kernel's library, or the library's default."""
        if state is None:
            return self.library.default_state
        if not isinstance(state, State):
            raise ArgumentError(f"{self.name}(): state= must be a State (lib.state()), got {type(state).__name__}")
        if state.key != self.library.state_key:
            raise ArgumentError(f"{self.name}(): state= belongs to {state.library}, whose shared variables "
                                f"differ from {self.library.path}'s; make one with lib.state()")
        return state

    def _user_args(self, args: tuple, kwargs: dict) -> tuple:
        """The caller's arguments in order; a precise error for anything else."""
        bound = self._user_by_position(args, kwargs)
        if bound is not None:
            return bound
        names = self.user_arg_names
        if len(args) > len(names):
            raise ArgumentError(f"{self.name}() takes {len(names)} arguments ({', '.join(names)}; the shared "
                                f"variables {', '.join(self.shared_names)} come from state=), got {len(args)}")
        for key in kwargs:
            if key in self.arg_names[self.n_args:]:
                raise ArgumentError(f"{self.name}(): {key!r} is a shared variable: its value comes from the "
                                    "state (state.set(...)), not from an argument")
            if key not in names:
                raise ArgumentError(f"{self.name}() has no argument {key!r}; arguments: {', '.join(names)}")
            if names.index(key) < len(args):
                raise ArgumentError(f"{self.name}(): argument {key!r} given twice")
        missing = [n for n in names[len(args):] if n not in kwargs]
        raise ArgumentError(f"{self.name}(): argument {missing[0]!r} is missing")

    def _with_out(self, args: tuple, values: list, out: Sequence[np.ndarray]) -> Any:
        """The caller's buffers for its outputs, new ones for the updates."""
        if not isinstance(out, (list, tuple)) or len(out) != self.n_outputs:
            raise ArgumentError(f"{self.name}(): out= must be a list or tuple of {self.n_outputs} arrays (the "
                                "outputs that are not updates)")
        arrays = self._bind(tuple(args) + tuple(values), {})
        shapes = [a.shape for a in arrays]
        wanted = self._output_shapes(shapes, [a.item() if a.ndim == 0 else None for a in arrays])
        fresh = [self._allocate(j, wanted[j]) for j in range(self.n_outputs, len(self.outputs))]
        fresh = [b.view(self._out_dtypes[j]) for j, b in zip(range(self.n_outputs, len(self.outputs)), fresh)]
        return self.call_checked(*args, *values, out=[*out, *fresh])
