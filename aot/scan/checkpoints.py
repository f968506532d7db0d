"""`scan_checkpoints`: a scan whose gradient stores one state every `save_every_N` steps.

An outer scan runs over chunks of `save_every_N` steps; each outer step runs the
user's step function in an inner scan and keeps only the inner scan's last
state. The gradient of the outer scan stores the chunk boundaries only and, in
each reverse step, re-runs one chunk forward (the inner scan is part of the
outer step's graph) to differentiate it: memory O(n / N + N) states instead of
O(n), for about one extra forward pass of compute.

Semantics (Python reference loop, one sequence and one state):

    def scan_checkpoints(fn, seq, h0, params, n_steps, N):
        n = min(len(seq), n_steps)
        h, kept = h0, []
        for start in range(0, n, N):
            for t in range(start, min(start + N, n)):
                h = fn(seq[t], h, *params)
            kept.append(h)                 # the state after each chunk
        return stack(kept)                 # kept[-1] is the final state

Compared with Aesara's version the limits that could be lifted are: sequences may
have different lengths (the shortest wins, as in scan), `n_steps` may be smaller
than the sequences, and `n` need not be a multiple of `save_every_N` (the last
chunk is shorter; no padding is needed). Still as in Aesara: sequences and
states use a single tap ([0] and [-1]), and the result is the state after each
chunk, so only `result[-1]` is the scan's final value.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..graph.basic import as_tensor_variable
from ..ops.creation import arange
from ..ops.elemwise import cast, int_div, minimum
from ..ops.shape import shape_i
from .basic import ScanError, _as_list, scan


def scan_checkpoints(fn: Callable, sequences: Any = None, outputs_info: Any = None,
                     non_sequences: Any = None, name: str = "checkpointscan_fn", n_steps: Any = None,
                     save_every_N: int = 10, padding: bool = True):
    """Aesara's `scan_checkpoints`; returns `(outputs, updates)` with one row per chunk."""
    if not isinstance(save_every_N, (int, np.integer)) or save_every_N < 1:
        raise ScanError(f"save_every_N must be a positive int, got {save_every_N!r}")
    seqs = []
    for i, s in enumerate(_as_list(sequences)):
        if isinstance(s, dict):
            if list(s.get("taps", [0])) != [0]:
                raise ScanError(f"scan_checkpoints: sequences[{i}] has taps {s['taps']}; only [0] is supported")
            s = s["input"]
        seqs.append(as_tensor_variable(s))
    states = []
    for i, o in enumerate(_as_list(outputs_info)):
        if isinstance(o, dict):
            if list(o.get("taps", [-1])) != [-1]:
                raise ScanError(f"scan_checkpoints: outputs_info[{i}] has taps {o['taps']}; only [-1] "
                                "is supported (singly recurrent)")
            o = o.get("initial")
        if o is None:
            raise ScanError(f"scan_checkpoints: outputs_info[{i}] is None; every output needs an initial "
                            "state, since only the states at chunk ends are kept")
        states.append(as_tensor_variable(o))
    params = [as_tensor_variable(p) for p in _as_list(non_sequences)]
    if not seqs and n_steps is None:
        raise ScanError("scan_checkpoints needs sequences or n_steps")
    n = None
    for seq in seqs:
        length = shape_i(seq, 0)
        n = length if n is None else minimum(n, length)
    if n_steps is not None:
        steps = cast(as_tensor_variable(n_steps), "int64")
        n = steps if n is None else minimum(n, steps)
    N = int(save_every_N)
    n_chunks = int_div(n + (N - 1), N)
    n_seqs = len(seqs)

    def chunk(c, *args):
        carried, rest = list(args[:len(states)]), list(args[len(states):])
        outer_seqs, inner_params = rest[:n_seqs], rest[n_seqs:]
        start = c * N
        count = minimum(N, n - start)
        pieces = [s[start:start + count] for s in outer_seqs]
        inner, _ = scan(fn, sequences=pieces, outputs_info=carried, non_sequences=inner_params,
                        n_steps=count, return_list=True, name=f"{name}_inner")
        return [o[-1] for o in inner]

    outputs, updates = scan(chunk, sequences=[arange(n_chunks)], outputs_info=states,
                            non_sequences=seqs + params, return_list=True, name=name)
    return (outputs[0] if len(outputs) == 1 else outputs), updates
