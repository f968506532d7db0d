"""scanaot.runtime: every bad argument raises before native code runs; bad files are
refused; calls are reentrant; random arguments never crash the process."""
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot.runtime import manifest as manifest_mod
from scanaot.runtime.elf import MANIFEST_SECTION, sections

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """axpy(a, x, k): k * (x * a) row-wise, plus a running sum over x's rows."""
    a, x, k = at.fvector("a"), at.fmatrix("x"), at.iscalar("k")
    rows, _ = scanaot.scan(lambda r, acc: acc + r, sequences=x, outputs_info=at.zeros_like(a))
    art = scanaot.compile([a, x, k], [(x * a) * k, rows], name="axpy",
                          out_dir=tmp_path_factory.mktemp("rt"))
    return rt.load(art.library)


def good_args():
    return np.ones(3, "float32"), np.arange(6, dtype="float32").reshape(2, 3), 2


def reference(a, x, k):
    return (x * a) * k, np.cumsum(x, axis=0, dtype="float32")


def test_good_call(lib):
    got = lib.axpy(*good_args())
    for g, r in zip(got, reference(*good_args())):
        np.testing.assert_allclose(g, r)


def test_read_only_and_empty_arrays_take_the_fast_path(lib):
    a, x, k = good_args()
    a.flags.writeable = False
    x.flags.writeable = False
    for g, r in zip(lib.axpy(a, x, k), reference(a, x, k)):
        np.testing.assert_allclose(g, r)
    empty = np.zeros((0, 3), "float32")
    got = lib.axpy(a, empty, k)
    assert got[0].shape == (0, 3) and got[1].shape == (0, 3)


BAD = [
    (lambda a, x, k: (a.astype("float64"), x, k), rt.ArgumentError, "'a': expected dtype float32, got float64"),
    (lambda a, x, k: (a[None], x, k), rt.ArgumentError, "'a': expected 1 dims, got 2"),
    (lambda a, x, k: (a, x[0], k), rt.ArgumentError, "'x': expected 2 dims"),
    (lambda a, x, k: (np.ones(4, "float32"), x, k), rt.ShapeError, "x.shape\\[1\\] == a.shape\\[0\\]"),
    (lambda a, x, k: (a, np.asfortranarray(np.ones((3, 3), "float32")), k), rt.ArgumentError, "'x': not C-contiguous"),
    (lambda a, x, k: (a, x[:, ::2], k), rt.ArgumentError, "not C-contiguous"),
    (lambda a, x, k: (list(a), x, k), rt.ArgumentError, "'a': expected a numpy array of float32"),
    (lambda a, x, k: (a, x, None), rt.ArgumentError, "'k': expected a numpy array of int32"),
    (lambda a, x, k: (a, x, 2.5), rt.ArgumentError, "'k': 2.5 is not exactly representable"),
    (lambda a, x, k: (a, x, np.int64(2)), rt.ArgumentError, "'k': expected dtype int32, got int64"),
    (lambda a, x, k: (a, x, np.ones(2, "int32")), rt.ArgumentError, "'k': expected 0 dims"),
    (lambda a, x, k: (a, x, 2**40), rt.ArgumentError, "'k'"),
    (lambda a, x, k: (a, x), rt.ArgumentError, "'k' is missing"),
    (lambda a, x, k: (a, x, k, k), rt.ArgumentError, "takes 3 arguments"),
]


@pytest.mark.parametrize("case", range(len(BAD)))
def test_bad_arguments_raise(lib, case):
    change, error, pattern = BAD[case]
    with pytest.raises(error, match=pattern):
        lib.axpy(*change(*good_args()))


def test_keyword_errors(lib):
    a, x, k = good_args()
    with pytest.raises(rt.ArgumentError, match="no argument 'y'"):
        lib.axpy(a, x, k, y=1)
    with pytest.raises(rt.ArgumentError, match="'a' given twice"):
        lib.axpy(a, x, k, a=a)
    with pytest.raises(AttributeError, match="no function 'nope'"):
        lib.nope


def test_out_buffers(lib):
    a, x, k = good_args()
    out = [np.empty((2, 3), "float64"), np.empty((2, 3), "float32")]  # float32 * int32 -> float64
    got = lib.axpy(a, x, k, out=out)
    assert np.shares_memory(got[0], out[0])
    np.testing.assert_allclose(out[1], reference(a, x, k)[1])
    readonly = np.empty((2, 3), "float64")
    readonly.flags.writeable = False
    with pytest.raises(rt.ArgumentError, match="out\\[0\\] is read-only"):
        lib.axpy(a, x, k, out=[readonly, out[1]])
    with pytest.raises(rt.ArgumentError, match="out\\[1\\]: expected a float32 array of shape \\(2, 3\\)"):
        lib.axpy(a, x, k, out=[out[0], np.empty((3, 3), "float32")])
    with pytest.raises(rt.ArgumentError, match="needs 2 arrays"):
        lib.axpy(a, x, k, out=[out[0]])


def test_inputs_are_not_written(lib):
    a, x, k = good_args()
    before = x.copy()
    lib.axpy(a, x, k)
    np.testing.assert_array_equal(x, before)


# ------------------------------------------------------------------ files the runtime refuses
def copy_of(lib, tmp_path) -> Path:
    path = tmp_path / "lib.so"
    path.write_bytes(Path(lib.path).read_bytes())
    return path


def test_flipped_byte_is_refused(lib, tmp_path):
    path = copy_of(lib, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(rt.LibraryError, match="corrupted: its SHA-256 digest"):
        rt.load(path)


def test_truncated_file_is_refused(lib, tmp_path):
    path = copy_of(lib, tmp_path)
    data = path.read_bytes()
    for size in (10, 100, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        with pytest.raises(rt.LibraryError):
            rt.load(path)


def test_foreign_files_are_refused(tmp_path):
    text = tmp_path / "notes.so"
    text.write_text("hello")
    with pytest.raises(rt.LibraryError, match="not a shared library"):
        rt.load(text)
    libm = Path("/lib/x86_64-linux-gnu/libm.so.6")
    if libm.exists():
        with pytest.raises(rt.LibraryError, match="not a scanaot library"):
            rt.load(libm)
    with pytest.raises(rt.LibraryError, match="cannot read"):
        rt.load(tmp_path / "missing.so")


def rewrite_manifest(lib, tmp_path, change) -> Path:
    """A copy of the library with its manifest edited (same length) and resealed."""
    path = copy_of(lib, tmp_path)
    data = path.read_bytes()
    offset, size = sections(data)[MANIFEST_SECTION]
    raw = data[offset:offset + size].rstrip(b"\0")
    edited = change(raw.decode()).encode()
    assert len(edited) == len(raw)
    data = data[:offset] + edited + data[offset + len(raw):]
    path.write_bytes(manifest_mod.seal(data))
    return path


def test_other_abi_version_is_refused(lib, tmp_path):
    path = rewrite_manifest(lib, tmp_path, lambda s: s.replace('"abi_version": 1', '"abi_version": 9'))
    with pytest.raises(rt.LibraryError, match="ABI version 9; this runtime reads version 1"):
        rt.load(path)


def test_other_target_is_refused(lib, tmp_path):
    path = rewrite_manifest(lib, tmp_path, lambda s: s.replace('"x86_64-unknown', '"mips64-unknown'))
    with pytest.raises(rt.LibraryError, match="built for mips64"):
        rt.load(path)
    path = rewrite_manifest(lib, tmp_path, lambda s: s.replace('"name": "cpu"', '"name": "tpu"'))
    with pytest.raises(rt.LibraryError, match="target 'tpu'"):
        rt.load(path)


def test_golden_abi1_library_still_loads():
    """A library built by an earlier scanaot (ABI 1) keeps loading and giving its results."""
    lib = rt.load(GOLDEN / "abi1_power.so")
    expected = json.loads((GOLDEN / "abi1_power.json").read_text())
    a = np.asarray(expected["A"], dtype="float32")
    np.testing.assert_allclose(lib.power(a, expected["k"]), expected["result"], rtol=1e-6)


def test_golden_library_with_cpu_variants_still_loads():
    """A portable library (manifest with CPU variants, ifunc entry points) from this
    scanaot keeps loading: the format later versions must still read."""
    lib = rt.load(GOLDEN / "abi1_variants_power.so")
    expected = json.loads((GOLDEN / "abi1_variants_power.json").read_text())
    assert [v["cpu"] for v in lib.manifest["target"]["variants"]] == expected["variants"]
    assert lib.cpu_variant in expected["variants"]
    a = np.asarray(expected["A"], dtype="float32")
    np.testing.assert_allclose(lib.power(a, expected["k"]), expected["result"], rtol=1e-6)


# ------------------------------------------------------------------ reentrancy
def test_eight_threads_give_the_serial_results(lib):
    rng = np.random.default_rng(7)
    jobs = [(rng.standard_normal(64).astype("float32"), rng.standard_normal((200, 64)).astype("float32"),
             int(rng.integers(1, 5))) for _ in range(32)]
    serial = [lib.axpy(*j) for j in jobs]
    results = [None] * len(jobs)
    barrier = threading.Barrier(8)

    def work(worker):
        barrier.wait()
        for _ in range(5):
            for i in range(worker, len(jobs), 8):
                results[i] = lib.axpy(*jobs[i])

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------------ fuzzing
DTYPES = ["float32", "float64", "int32", "int64", "int8", "bool"]

arrays = st.one_of(
    st.none(),
    st.integers(-3, 3), st.floats(-2, 2), st.booleans(),
    st.tuples(st.sampled_from(DTYPES), st.lists(st.integers(0, 4), min_size=0, max_size=3),
              st.booleans()),
)


def materialize(spec, rng):
    if not isinstance(spec, tuple):
        return spec
    dtype, shape, strided = spec
    data = rng.integers(-2, 3, size=[d * (2 if strided and i == 0 else 1) for i, d in enumerate(shape)])
    arr = data.astype(dtype)
    return arr[::2] if strided and shape else arr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(arrays, min_size=0, max_size=4))
def test_random_arguments_either_match_numpy_or_raise(lib, specs):
    rng = np.random.default_rng(0)
    args = [materialize(s, rng) for s in specs]
    try:
        got = lib.axpy(*args)
    except (rt.ArgumentError, rt.ShapeError, rt.StatusError):
        return
    a, x, k = args
    for g, r in zip(got, reference(a, x, k)):
        np.testing.assert_allclose(g, r, rtol=1e-6)
