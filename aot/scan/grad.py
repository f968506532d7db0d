"""The VJP of scan: a reversed scan over the stored history (backpropagation through time).

Forward, step t reads state positions L + t + k of the history H (the initial
block's L rows, then one row per step) and writes position L + t. Backward, a
scan runs t = n-1 .. 0 (go_backwards over the per-step slices) and carries, per
float state, a window of L adjoints for positions t+1 .. t+L: position L + t, the
output of step t, is its last entry. Each backward step

- adds the output's own cotangent to that adjoint,
- differentiates the cloned step graph (the forward step re-traced on the
  backward step's inputs: nested scans and captured variables come along),
- shifts the window by one position and adds the taps' adjoints,
- sums the non-sequences' adjoints in accumulators,
- emits the sequences' per-step adjoints, scattered into place afterwards.

After the loop the window holds the initial block's adjoint. With `until`, `n` is
the number of steps that ran, so the reverse loop covers exactly those.
`truncate_gradient = T > 0` runs only the last T reverse steps (Aesara's rule:
the initial state then gets no gradient).
"""
from __future__ import annotations

from ..graph import rules
from ..graph.basic import as_tensor_variable, clone_replace
from ..autodiff.core import differentiable, vjp
from ..ops.creation import alloc, arange, zeros_like
from ..ops.elemwise import eq, ge, minimum, switch
from ..ops.indexing import inc_subtensor, set_subtensor
from ..ops.shape import dimshuffle, shape_i
from ..ops.shape_inference import shape_of
from .basic import scan
from .op import FinalValue, ScanOp


def final(stacked, initial):
    return FinalValue()(stacked, initial)


@rules.vjp(FinalValue)
def _final_value_vjp(node, cots, needed):
    """The cotangent goes to the last row, or to `initial` when there is none: a mask
    (not an indexed write, which would read row -1 of an empty stack). Gradients of
    gradients through scan need it: the VJP of a scan ends in FinalValue."""
    stacked, initial = node.inputs
    g = cots[0]
    n = shape_i(stacked, 0)
    is_last = dimshuffle(eq(arange(n), n - 1), 0, *["x"] * initial.ndim)
    row = dimshuffle(g, "x", *range(initial.ndim))
    g_stacked = switch(is_last, row, zeros_like(stacked)) if needed[0] else None
    g_initial = switch(eq(n, 0), g, zeros_like(g)) if needed[1] else None
    return [g_stacked, g_initial]


@rules.vjp(ScanOp)
def _scan_vjp(node, cots, needed):
    op = node.op
    parts = op.split_inputs(node.inputs)
    seqs, inits, params = parts["sequences"], parts["initial"], parts["params"]
    outs = node.outputs
    n = shape_i(outs[0], 0)  # steps that ran (until included)
    nb = n if op.truncate_gradient is None or op.truncate_gradient < 0 else \
        minimum(n, as_tensor_variable(int(op.truncate_gradient)))

    # forward values each step read, as sequences of n rows (go_backwards read them reversed)
    read = [seq[::-1] for seq in seqs] if op.go_backwards else list(seqs)
    seq_slices, seq_meta = [], []
    for s, (seq, taps) in enumerate(zip(read, op.seq_taps)):
        lead = max(0, -min(taps))
        for k in taps:
            start = lead + k
            seq_slices.append(seq[start:start + n])
            seq_meta.append((s, start))
    states = [i for i, kind in enumerate(op.out_kinds) if kind == "state"]
    hist_slices, windows0, state_info = [], [], []
    for j, (i, init) in enumerate(zip(states, inits)):
        taps = op.out_taps[i]
        rows = -min(taps)
        block = taps != [-1]
        history = _history(init, outs[i], rows, block, n)
        for k in taps:
            hist_slices.append(history[rows + k:rows + k + n])
        grad_here = differentiable(outs[i])
        state_info.append((i, taps, rows, block, grad_here))
        if grad_here:
            first = init[:rows] if block else init
            windows0.append(zeros_like(first))
    given = [i for i, c in enumerate(cots) if c is not None and differentiable(outs[i])]
    g_seqs = [cots[i] for i in given]
    # each step's stored outputs: the reverse step reads them instead of recomputing them
    stored = [i for i, out in enumerate(outs) if differentiable(out)]
    stored_seqs = [outs[i] for i in stored]
    needed_part = op.split_inputs(needed)
    float_params = [p for p, want in zip(params, needed_part["params"]) if want]
    accs0 = [zeros_like(p) for p in float_params]
    float_seq_taps = [m for m, v in enumerate(seq_slices)
                      if differentiable(v) and needed_part["sequences"][seq_meta[m][0]]]

    def backward_step(*args):
        it = iter(args)
        seq_vals = [next(it) for _ in seq_slices]
        hist_vals = [next(it) for _ in hist_slices]
        g_vals = dict(zip(given, [next(it) for _ in given]))
        out_vals = dict(zip(stored, [next(it) for _ in stored]))
        windows = [next(it) for _ in windows0]
        accs = [next(it) for _ in accs0]
        param_vals = [next(it) for _ in params]
        replace = dict(zip(op.inner_inputs, seq_vals + hist_vals + param_vals))
        step_outs = clone_replace(op.inner_outputs, replace)
        cot, w = [], 0
        for i, kind in enumerate(op.out_kinds):
            g = g_vals.get(i)
            info = next((s for s in state_info if s[0] == i), None)
            if info is not None and info[4]:
                _, _, rows, block, _ = info
                carried = windows[w][rows - 1] if block else windows[w]
                g = carried if g is None else g + carried
                w += 1
            cot.append(g)
        wrt = seq_vals + hist_vals + param_vals
        grads = vjp(step_outs, cot, wrt)
        # rules that use a step's outputs (tanh' = 1 - out**2, ...) read the stored values,
        # which leaves the forward recomputation dead
        reuse = {step_outs[i]: out_vals[i] for i in stored if step_outs[i].owner is not None}
        if reuse:
            live = [g for g in grads if g is not None]
            rebuilt = iter(clone_replace(live, reuse))
            grads = [None if g is None else next(rebuilt) for g in grads]
        g_seq = grads[:len(seq_vals)]
        g_hist = grads[len(seq_vals):len(seq_vals) + len(hist_vals)]
        g_par = grads[len(seq_vals) + len(hist_vals):]
        results = []
        for m in float_seq_taps:
            zero = zeros_like(seq_vals[m])
            results.append(zero if g_seq[m] is None else zero + g_seq[m])
        h, w = 0, 0
        for (i, taps, rows, block, grad_here) in state_info:
            tap_grads = g_hist[h:h + len(taps)]
            h += len(taps)
            if not grad_here:
                continue
            window = windows[w]
            w += 1
            if block:
                new = set_subtensor(zeros_like(window)[1:], window[:-1])
                for k, g in zip(taps, tap_grads):
                    if g is not None:
                        new = inc_subtensor(new[rows + k], g)
            else:
                new = tap_grads[0] if tap_grads[0] is not None else zeros_like(window)
                new = zeros_like(window) + new
            results.append(new)
        p = 0
        for param, g, want in zip(params, g_par, needed_part["params"]):
            if not want:
                continue
            results.append(accs[p] if g is None else accs[p] + g)
            p += 1
        return results

    if not (float_seq_taps or windows0 or accs0):
        return [None] * len(node.inputs)
    outputs_info = [None] * len(float_seq_taps) + windows0 + accs0
    backward = scan(backward_step, sequences=seq_slices + hist_slices + g_seqs + stored_seqs,
                    outputs_info=outputs_info,
                    non_sequences=params, n_steps=nb, go_backwards=True, return_list=True,
                    name=f"{op.name or 'scan'}_grad")[0]
    seq_grads = backward[:len(float_seq_taps)]
    window_stacks = backward[len(float_seq_taps):len(float_seq_taps) + len(windows0)]
    acc_stacks = backward[len(float_seq_taps) + len(windows0):]

    result = [None] * len(node.inputs)
    offset = {"sequences": 1, "initial": 1 + len(seqs), "params": 1 + len(seqs) + len(inits)
              + sum(op.collect_ranks)}
    seq_adjoints: dict[int, object] = {}
    for m, stacked in zip(float_seq_taps, seq_grads):
        s, start = seq_meta[m]
        g = seq_adjoints.get(s, zeros_like(read[s]))
        first = start + n - nb
        seq_adjoints[s] = inc_subtensor(g[first:start + n], stacked[::-1])
    for s, g in seq_adjoints.items():
        result[offset["sequences"] + s] = g[::-1] if op.go_backwards else g
    w = 0
    for j, (i, taps, rows, block, grad_here) in enumerate(state_info):
        if not grad_here:
            continue
        last = final(window_stacks[w], windows0[w])
        w += 1
        if op.truncate_gradient is not None and op.truncate_gradient >= 0:
            last = switch(ge(nb, n), last, zeros_like(last))
        init = inits[j]
        result[offset["initial"] + j] = inc_subtensor(zeros_like(init)[:rows], last) if block else last
    p = 0
    for k, want in enumerate(needed_part["params"]):
        if want:
            result[offset["params"] + k] = final(acc_stacks[p], accs0[p])
            p += 1
    return result


def _history(init, stacked, rows: int, block: bool, n):
    """The initial block's first `rows` rows, then every step's value: n + rows rows."""
    dims = shape_of(stacked)[1:]
    history = alloc(as_tensor_variable(0).astype(stacked.dtype), n + rows, *dims)
    head = init[:rows] if block else init
    history = set_subtensor(history[:rows], head) if block else set_subtensor(history[0], head)
    return set_subtensor(history[rows:], stacked)
