"""Runtime check bits a kernel reports in its i32 status result, and their messages.

Kernels never abort: a failed check sets a bit, the kernel finishes on clamped
indices (memory-safe, values meaningless), and the caller raises.

The status word (C callers test bits, so the layout only adds):

    bits 0..15   one bit per kind of check (the constants below)
    bits 16..30  1 + the index of the first failing check in the function's
                 manifest `checks` list (0: not recorded), so the error can say
                 which op, which scan step and which variables failed

`OUTPUT_FULL` is not an error: an `until` loop filled the capacity the caller
gave its results before its condition fired; the caller reruns with larger
outputs (kernels are pure, so a rerun is safe).
"""
from __future__ import annotations

from typing import Sequence

INDEX_OUT_OF_BOUNDS = 1
SHAPE_MISMATCH = 2
BAD_N_STEPS = 4
INITIAL_TOO_SHORT = 8
STEP_SHAPE = 16
BAD_ALLOC = 32
EMPTY_LAST = 64
OUTPUT_FULL = 128
CPU_UNSUPPORTED = 256
LINALG_ERROR = 512

SITE_SHIFT = 16
KIND_MASK = (1 << SITE_SHIFT) - 1
MAX_SITE = (1 << 15) - 1

MESSAGES = {
    INDEX_OUT_OF_BOUNDS: "an index was out of bounds",
    SHAPE_MISMATCH: "operands of an elementwise op, dot or set/inc_subtensor had incompatible shapes",
    BAD_N_STEPS: "scan: n_steps was negative, or so large that the loop's history cannot fit in memory, "
                 "or a sequence was shorter than its taps need",
    INITIAL_TOO_SHORT: "scan: an initial state had fewer rows than its taps need",
    STEP_SHAPE: "scan: the step function returned a value whose shape differs from the state's",
    BAD_ALLOC: "a negative dimension, arange with a zero step, or no memory left for a temporary",
    EMPTY_LAST: "result[-1] of a scan that ran zero steps",
    OUTPUT_FULL: "an until loop filled its results' capacity before its condition fired (rerun with "
                 "larger outputs)",
    CPU_UNSUPPORTED: "this CPU lacks instructions every kernel variant in the library needs",
    LINALG_ERROR: "a matrix was singular (matrix_inverse, solve) or not positive definite (cholesky)",
}


class StatusError(IndexError):
    """A runtime check inside compiled code failed (bad index, shape or n_steps)."""


def check_status(bits: int, function: str, checks: Sequence[str] = ()) -> None:
    """Raise StatusError for a nonzero status; `checks` is the manifest's list of check
    sites, named in the message when the kernel recorded one."""
    if bits == 0:
        return
    reasons = [msg for bit, msg in MESSAGES.items() if bits & bit] or [f"status {bits}"]
    message = f"{function}: " + "; ".join(reasons)
    site = (bits >> SITE_SHIFT) & MAX_SITE
    if 0 < site <= len(checks):
        message += f" (the first failing check: {checks[site - 1]})"
    raise StatusError(message)
