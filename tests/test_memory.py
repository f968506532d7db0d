"""The guide's A**k keeps only the last state: k = 10**7 steps on 1000 floats stays
far below the 40 GB that storing every step would need."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

SCRIPT = textwrap.dedent("""
    import json, numpy as np
    import scanaot as aesara, scanaot.tensor as at

    def rss_kb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1])

    k = at.iscalar("k"); A = at.vector("A")
    result, updates = aesara.scan(fn=lambda prior_result, A: prior_result * A,
                                  outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
    power = aesara.function(inputs=[A, k], outputs=result[-1] if KEEP_LAST else result)
    a = np.full(1000, 1.0000001, dtype="float32")
    power(a, 10)                                  # warm up: library loaded, pages touched
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak RSS (VmHWM)
    base = rss_kb("VmRSS")
    out = power(a, STEPS)
    peak = rss_kb("VmHWM")
    print(json.dumps({"extra_mb": (peak - base) / 1024, "value": float(out.ravel()[-1])}))
""")


# Every allocation of 64 kB or more gets its own mapping, returned when freed: the peak
# RSS of a call then counts what the call holds at once, not what an earlier call left
# in malloc's free lists.
MEASURING_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def run_script(script: str, **settings) -> dict:
    """Run a measurement script in a fresh process; it prints one JSON line."""
    prelude = "".join(f"{k} = {v!r}\n" for k, v in settings.items())
    proc = subprocess.run([sys.executable, "-c", prelude + script], capture_output=True, text=True,
                          timeout=600, env=MEASURING_ENV)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(keep_last: bool, steps: int) -> dict:
    return run_script(SCRIPT, KEEP_LAST=keep_last, STEPS=steps)


def test_power_ten_million_steps_keeps_only_the_last_state():
    result = measure(keep_last=True, steps=10**7)
    assert result["extra_mb"] < 100, result
    assert result["value"] > 1.0


def test_measurement_sees_stored_steps():
    """Control: keeping all 10**5 steps (400 MB) shows up in the same measurement."""
    result = measure(keep_last=False, steps=10**5)
    assert result["extra_mb"] > 300, result


GRAD_SCRIPT = textwrap.dedent("""
    import json, numpy as np
    import scanaot as aesara, scanaot.tensor as at

    def rss_kb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1])

    w, c, h0 = at.dvector("w"), at.dvector("c"), at.dvector("h0")
    step = lambda h, w, c: at.tanh(h * w + c)
    if EVERY:
        hs, _ = aesara.scan_checkpoints(step, outputs_info=[h0], non_sequences=[w, c], n_steps=STEPS,
                                        save_every_N=EVERY)
    else:
        hs, _ = aesara.scan(step, outputs_info=h0, non_sequences=[w, c], n_steps=STEPS)
    g = aesara.grad(hs[-1].sum(), w)
    f = aesara.function([w, c, h0], g)
    size = 10000
    args = [np.full(size, 0.9), np.full(size, 0.1), np.zeros(size)]
    f(*args)
    open("/proc/self/clear_refs", "w").write("5")
    base = rss_kb("VmRSS")
    out = f(*args)
    print(json.dumps({"extra_mb": (rss_kb("VmHWM") - base) / 1024, "g0": float(out[0])}))
""")


def grad_memory(every: int, steps: int = 1000) -> dict:
    return run_script(GRAD_SCRIPT, EVERY=every, STEPS=steps)


def test_checkpointed_gradient_keeps_only_chunk_boundaries():
    """1000 steps of an 80 kB state: the plain gradient stores every state (80 MB for
    the forward values alone); save_every_N=10 stores 100 boundaries plus one chunk."""
    plain, every10 = grad_memory(0), grad_memory(10)
    assert abs(plain["g0"] - every10["g0"]) < 1e-9 * max(1.0, abs(plain["g0"]))
    assert plain["extra_mb"] > 75, plain
    assert every10["extra_mb"] < plain["extra_mb"] / 4, (every10, plain)


LARGE_TEMPORARY = textwrap.dedent("""
    import json, numpy as np
    import scanaot as aesara, scanaot.tensor as at

    def rss_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1])

    a = at.vector("a")
    rows, _ = aesara.scan(fn=lambda p, a: p * a, outputs_info=at.ones_like(a), non_sequences=a, n_steps=2000)
    f = aesara.function(inputs=[a], outputs=rows.sum())   # the stacked rows: an 8 MB temporary
    x = np.full(1000, 0.999, dtype="float32")
    first = float(f(x))
    base = rss_kb()
    for _ in range(30):
        assert float(f(x)) == first
    print(json.dumps({"grown_mb": (rss_kb() - base) / 1024, "value": first,
                      "routed": "@scanaot_alloc" in f.ir("llvm") and "@malloc" not in f.ir("llvm")}))
""")


def test_large_temporaries_come_from_the_library_allocator_and_are_returned():
    """cpu_alloc.c maps temporaries of 2 MB and more on huge pages and unmaps them on free:
    thirty calls with an 8 MB temporary leave the process no larger."""
    out = subprocess.run([sys.executable, "-c", LARGE_TEMPORARY], capture_output=True, text=True,
                         env={**os.environ}, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["routed"]
    assert result["grown_mb"] < 4, result
    want = float(np.sum(np.cumprod(np.full((2000, 1000), 0.999), axis=0)))
    assert abs(result["value"] - want) / want < 1e-2  # a float32 sum of two million terms


ALIGNMENT_PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>
void *scanaot_alloc(size_t);
void *scanaot_aligned_alloc(size_t, size_t);
void scanaot_free(void *);
void *scanaot_guard_enter(void);
void *scanaot_guard_leave(void);

static int check(char *p, size_t bytes, size_t alignment) {
  if (!p || (uintptr_t)p % alignment) return 1;
  memset(p, 0xab, bytes); /* the whole block is usable (and ASan-clean under -fsanitize) */
  return 0;
}

int main(void) {
  size_t sizes[] = {0, 1, 15, 64, 1000, 4096, (size_t)2 << 20, ((size_t)3 << 20) + 7};
  int failures = 0;
  for (int guarded = 0; guarded < 2; guarded++) {
    if (guarded) scanaot_guard_enter();
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
      char *a = scanaot_alloc(sizes[i]);
      char *b = scanaot_aligned_alloc(32, sizes[i]);
      char *c = scanaot_aligned_alloc(4096, sizes[i]);
      failures += check(a, sizes[i], 64) + check(b, sizes[i], 64) + check(c, sizes[i], 4096);
      scanaot_free(c);
      scanaot_free(a);
      scanaot_free(b);
    }
    if (guarded) scanaot_guard_leave();
  }
  printf("%d\n", failures);
  return failures != 0;
}
"""


def test_every_block_of_the_library_allocator_is_64_byte_aligned(tmp_path):
    """The kernels' allocations carry no alignment arithmetic (targets/pipeline.py,
    BUFFERIZE): cpu_alloc.c hands out 64-byte aligned blocks, from malloc and from
    huge-page mappings, guarded or not, and aligned_alloc's larger alignments."""
    import scanaot.runtime
    source = Path(scanaot.runtime.__file__).parent / "cpu_alloc.c"
    program = tmp_path / "alignment.c"
    program.write_text(ALIGNMENT_PROGRAM)
    binary = tmp_path / "alignment"
    subprocess.run(["cc", "-O1", "-fsanitize=address", "-o", str(binary), str(program), str(source)], check=True)
    out = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "0", out.stdout + out.stderr
