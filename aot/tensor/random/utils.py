"""`scanaot.tensor.random.utils.RandomStream`: Aesara's random stream. Each draw gets
its own state (a shared `[key0, key1, counter]`, key from the stream's seed and the
draw's number) whose `default_update` is the draw's next state, so a function (or a
scan step) that draws advances it by one per call."""
from __future__ import annotations

from typing import Any, Callable

from ...graph.basic import Variable
from ...graph.shared import SharedVariable
from . import basic


class RandomStream:
    """Draws `srng.normal(...)`, `srng.integers(...)`, ... (the functions of
    `scanaot.tensor.random.basic`, without `rng=`); `seed(n)` reseeds every state."""

    def __init__(self, seed: int | None = None, namespace: Any = None, rng_ctor: Any = None):
        self.default_instance_seed = seed
        self.namespace = basic if namespace is None else namespace
        self.state_updates: list[tuple[SharedVariable, Variable]] = []

    def updates(self) -> list[tuple[SharedVariable, Variable]]:
        """(state, next state) of every draw made so far."""
        return list(self.state_updates)

    def seed(self, seed: int | None = None) -> None:
        """Reseed every state this stream made, as a fresh RandomStream(seed) would."""
        self.default_instance_seed = seed
        for number, (state, _) in enumerate(self.state_updates):
            state.set_value(basic.state_value(seed, number))

    def gen(self, op: Callable[..., Variable], *args: Any, **kwargs: Any) -> Variable:
        """`op(*args, rng=<a new state>, **kwargs)`, its state updated after each call."""
        if "rng" in kwargs:
            raise ValueError("The `rng` option cannot be used with a variate in a `RandomStream`")
        rng = basic.new_state(self.default_instance_seed, len(self.state_updates))
        out = op(*args, rng=rng, **kwargs)
        next_state = basic.core_draw(out, rng)
        rng.default_update = next_state
        self.state_updates.append((rng, next_state))
        return out

    def __getattr__(self, name: str) -> Callable[..., Variable]:
        if name.startswith("_") or name not in getattr(self.namespace, "__all__", ()) or name == "new_state":
            raise AttributeError(f"RandomStream has no distribution {name!r}; see docs/random.md")
        op = getattr(self.namespace, name)

        def method(*args: Any, **kwargs: Any) -> Variable:
            return self.gen(op, *args, **kwargs)
        method.__name__ = name
        method.__doc__ = op.__doc__
        return method
