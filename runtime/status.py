"""Runtime check bits a kernel reports in its i32 status result, and their messages.

Kernels never abort: a failed check sets a bit, the kernel finishes on clamped
indices (memory-safe, values meaningless), and the caller raises.
"""
from __future__ import annotations

INDEX_OUT_OF_BOUNDS = 1
SHAPE_MISMATCH = 2
BAD_N_STEPS = 4
INITIAL_TOO_SHORT = 8
STEP_SHAPE = 16
BAD_ALLOC = 32
EMPTY_LAST = 64
CPU_UNSUPPORTED = 128

MESSAGES = {
    INDEX_OUT_OF_BOUNDS: "an index was out of bounds",
    SHAPE_MISMATCH: "operands of an elementwise op, dot or set/inc_subtensor had incompatible shapes",
    BAD_N_STEPS: "scan: n_steps was negative, or a sequence was shorter than its taps need",
    INITIAL_TOO_SHORT: "scan: an initial state had fewer rows than its taps need",
    STEP_SHAPE: "scan: the step function returned a value whose shape differs from the state's",
    BAD_ALLOC: "a negative dimension, or arange with a zero step",
    EMPTY_LAST: "result[-1] of a scan that ran zero steps",
    CPU_UNSUPPORTED: "this CPU lacks instructions every kernel variant in the library needs",
}


class StatusError(IndexError):
    """A runtime check inside compiled code failed (bad index, shape or n_steps)."""


def check_status(bits: int, function: str) -> None:
    if bits == 0:
        return
    reasons = [msg for bit, msg in MESSAGES.items() if bits & bit] or [f"status {bits}"]
    raise StatusError(f"{function}: " + "; ".join(reasons))
