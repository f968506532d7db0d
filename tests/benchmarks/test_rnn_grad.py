"""The memory the RNN's gradient (batch 32, hidden 256, input 64, 1000 steps) keeps with scan
and with scan_checkpoints (its speed is W4/W5 of the suite, test_suite.py).

Run with `pytest -m benchmark tests/benchmarks/test_rnn_grad.py -s`.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import scanaot as aesara
import scanaot.tensor as at

pytestmark = pytest.mark.benchmark

T, B, H, I = 1000, 32, 256, 64


def rnn_graph(every=0):
    x, h0 = at.ftensor3("x"), at.fmatrix("h0")
    W, U, b = at.fmatrix("W"), at.fmatrix("U"), at.fvector("b")
    step = lambda xt, h, W, U, b: at.tanh(aesara.dot(h, W) + aesara.dot(xt, U) + b)  # noqa: E731
    if every:
        hs, _ = aesara.scan_checkpoints(step, sequences=[x], outputs_info=[h0], non_sequences=[W, U, b],
                                        save_every_N=every)
    else:
        hs, _ = aesara.scan(step, sequences=x, outputs_info=h0, non_sequences=[W, U, b])
    return [x, h0, W, U, b], hs


def data():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((T, B, I)).astype("float32") * 0.1, np.zeros((B, H), "float32"),
            rng.standard_normal((H, H)).astype("float32") / 16, rng.standard_normal((I, H)).astype("float32") / 8,
            np.zeros(H, "float32")]


MEMORY = textwrap.dedent("""
    import json, sys, numpy as np
    sys.path.insert(0, "tests/benchmarks")
    import scanaot as aesara
    from test_rnn_grad import rnn_graph, data
    inputs, hs = rnn_graph(EVERY)
    grads = aesara.grad(hs[-1].sum(), inputs[1:])
    f = aesara.function(inputs, grads)
    args = data()
    f(*args)
    def kb(field):
        return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field))
    open("/proc/self/clear_refs", "w").write("5")
    base = kb("VmRSS")
    f(*args)
    print(json.dumps({"extra_mb": (kb("VmHWM") - base) / 1024}))
""")


@pytest.mark.parametrize("every", [0, 1, 10])
def test_rnn_gradient_memory(every, capsys):
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    proc = subprocess.run([sys.executable, "-c", f"EVERY = {every}\n" + MEMORY], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    extra = json.loads(proc.stdout.strip().splitlines()[-1])["extra_mb"]
    with capsys.disabled():
        label = "scan" if not every else f"scan_checkpoints(save_every_N={every})"
        print(f"\nrnn gradient (cost on the last state), {label}: {extra:.1f} MB above baseline")
