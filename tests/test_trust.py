"""Artifacts you can trust: loading maps exactly the verified bytes, the cache
serves only what was asked for, libraries refuse CPUs they cannot run, and
symbols cannot be hijacked (docs/deploy.md)."""
import base64
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at
from scanaot import cache
from scanaot.runtime import cpu as rt_cpu

QEMU = shutil.which("qemu-x86_64")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-user (qemu-x86_64) is not installed")


def _power_graph():
    k, A = at.iscalar("k"), at.fvector("A")
    result, _ = scanaot.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
    return [A, k], result[-1]


@pytest.fixture(scope="module")
def power_portable(tmp_path_factory):
    inputs, output = _power_graph()
    return scanaot.compile(inputs, output, name="power", out_dir=tmp_path_factory.mktemp("portable"))


# ------------------------------------------------------------------ loading
def test_rebuilt_library_at_the_same_path_runs_its_new_code(tmp_path):
    x = at.fvector("x")
    first = scanaot.compile([x], x * 2, name="k", out_dir=tmp_path)
    old = rt.load(first.library)
    y, n = at.fmatrix("y"), at.iscalar("n")
    scanaot.compile([y, n], (y + 1) * n, name="k", out_dir=tmp_path)
    new = rt.load(first.library)
    data = np.arange(6, dtype="float32").reshape(2, 3)
    before = data.copy()
    np.testing.assert_array_equal(new.k(data, 3), (before + 1) * 3)
    np.testing.assert_array_equal(data, before)  # the input is untouched
    np.testing.assert_array_equal(old.k(np.ones(3, "float32")), [2, 2, 2])  # the old one still works


def test_same_bytes_share_one_mapping(tmp_path, power_portable):
    copy = tmp_path / "libpower.so"
    shutil.copyfile(power_portable.library, copy)
    a, b = rt.load(power_portable.library), rt.load(copy)
    assert a._handle is b._handle


def test_file_changed_after_load_does_not_change_the_code(tmp_path):
    x = at.fvector("x")
    art = scanaot.compile([x], x * 2, name="k", out_dir=tmp_path)
    lib = rt.load(art.library)
    art.library.write_bytes(b"\x7fELF garbage")
    np.testing.assert_array_equal(lib.k(np.ones(2, "float32")), [2, 2])
    with pytest.raises(rt.LibraryError):
        rt.load(art.library)


def test_load_bytes(power_portable):
    lib = rt.load_bytes(power_portable.library.read_bytes(), "from-memory")
    np.testing.assert_allclose(lib.power(np.arange(4, dtype="float32"), 3), np.arange(4) ** 3)
    with pytest.raises(rt.LibraryError, match="from-memory"):
        rt.load_bytes(b"not a library", "from-memory")


# ------------------------------------------------------------------ the cache
@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("SCANAOT_CACHE", str(root))
    return root


def _entry(function) -> tuple[Path, Path]:
    return function.library_path, function.library_path.with_suffix(".json")


def test_swapped_cache_entry_is_rebuilt_not_served(private_cache):
    x = at.fvector("x")
    times2, times3 = scanaot.function([x], x * 2), scanaot.function([x], x * 3)
    so2, _ = _entry(times2)
    original = so2.read_bytes()
    os.chmod(so2, 0o600)
    shutil.copyfile(times3.library_path, so2)
    again = scanaot.function([x], x * 2)
    np.testing.assert_array_equal(again(np.ones(3, "float32")), [2, 2, 2])
    assert again.library_path == so2 and so2.read_bytes() == original


@pytest.mark.parametrize("damage", ["json", "so-truncated", "so-flipped", "json-missing", "stages-text",
                                    "stages-not-bytecode"])
def test_damaged_cache_entry_is_rebuilt(private_cache, damage):
    x = at.fvector("x")
    f = scanaot.function([x], x * 5)
    so, record = _entry(f)
    os.chmod(so, 0o600)
    if damage == "json":
        record.write_text("{not json")
    elif damage.startswith("stages"):
        stored = json.loads(record.read_text())
        text = "module {}" if damage == "stages-text" else base64.b64encode(b"module {}").decode()
        stored["stages"] = {name: text for name in stored["stages"]}
        record.write_text(json.dumps(stored))
    elif damage == "json-missing":
        record.unlink()
    elif damage == "so-truncated":
        so.write_bytes(so.read_bytes()[:1000])
    else:
        data = bytearray(so.read_bytes())
        data[len(data) // 2] ^= 0xFF
        so.write_bytes(bytes(data))
    again = scanaot.function([x], x * 5)
    np.testing.assert_array_equal(again(np.ones(2, "float32")), [5, 5])
    json.loads(record.read_text())  # rebuilt
    rt.load(so)
    assert "func.func" in again.ir("scan")


def test_a_cached_build_shows_the_stages_it_was_built_with(private_cache):
    """The record keeps each stage as MLIR bytecode (printing every stage of every build
    cost as much as a pass); a build served from the cache prints the same text."""
    x, n = at.fvector("x"), at.iscalar("n")
    out, _ = scanaot.scan(lambda p: p * 2, outputs_info=x, n_steps=n)
    built = scanaot.function([x, n], out[-1])
    stored = json.loads(_entry(built)[1].read_text())["stages"]
    assert sorted(stored) == sorted(["scan", "scan-opt", "scf", "memref", "llvm"])
    assert all(base64.b64decode(v).startswith(b"ML\xefR") for v in stored.values())
    cached = scanaot.function([x, n], out[-1])
    assert cached.library_path == built.library_path
    for stage in stored:
        assert cached.ir(stage) == built.ir(stage) and "module" in built.ir(stage)


def test_cache_folder_is_private_even_under_umask_0(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / "open"))
    old = os.umask(0)
    try:
        root = cache.cache_dir()
    finally:
        os.umask(old)
    assert root.stat().st_mode & 0o777 == 0o700
    os.chmod(root, 0o777)
    assert cache.cache_dir().stat().st_mode & 0o777 == 0o700


def test_cache_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SCANAOT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "scanaot"


def test_cache_size_cap_and_clear(private_cache, monkeypatch):
    x = at.fvector("x")
    first = scanaot.function([x], x + 1)
    one_entry = sum(p.stat().st_size for p in _entry(first))
    monkeypatch.setenv("SCANAOT_CACHE_MAX_MB", str(1.5 * one_entry / 2**20))
    second = scanaot.function([x], x + 2)
    assert not first.library_path.exists() and second.library_path.exists()
    info = cache.info()
    assert info["entries"] == 1 and info["path"] == str(private_cache)
    assert info["limit_bytes"] == int(1.5 * one_entry)
    assert cache.clear() == 1 and cache.info()["entries"] == 0


# ------------------------------------------------------------------ CPU levels
def test_portable_is_the_default_of_compile(power_portable):
    target = power_portable.manifest["target"]
    assert target["cpu"] == "portable"
    assert [v["cpu"] for v in target["variants"]] == ["x86-64-v2", "x86-64-v3", "x86-64-v4"]
    for v in target["variants"]:
        assert v["features"] == list(rt_cpu.LEVELS[v["cpu"]])


def test_loader_picks_the_best_variant_this_cpu_runs(power_portable):
    lib = rt.load(power_portable.library)
    host = rt_cpu.host_features(lib._handle)
    assert lib.cpu_variant == rt_cpu.best_variant(power_portable.manifest["target"]["variants"], host)["cpu"]
    np.testing.assert_allclose(lib.power(np.arange(5, dtype="float32"), 3), np.arange(5) ** 3)


@pytest.mark.parametrize("level", ["x86-64", "x86-64-v2", "x86-64-v3"])
def test_every_level_gives_the_same_result(tmp_path, level):
    inputs, output = _power_graph()
    art = scanaot.compile(inputs, output, name="power", out_dir=tmp_path, cpu=level)
    assert art.manifest["target"]["variants"][0]["cpu"] == level
    a = np.linspace(-1.5, 1.5, 37).astype("float32")
    np.testing.assert_array_equal(rt.load(art.library).power(a, 7), scanaot.function(inputs, output)(a, 7))


def test_a_cpu_without_the_features_is_refused_naming_them(tmp_path, monkeypatch):
    inputs, output = _power_graph()
    art = scanaot.compile(inputs, output, name="power", out_dir=tmp_path, cpu="x86-64-v4")
    monkeypatch.setattr(rt_cpu, "host_features", lambda handle: set(rt_cpu.LEVELS["x86-64-v3"]))
    with pytest.raises(rt.LibraryError, match="lacks avx512f, avx512bw, avx512cd, avx512dq, avx512vl"):
        rt.load_bytes(art.library.read_bytes() + b"", "v4-only")


def test_c_feature_table_matches_the_runtime(power_portable):
    lib = rt.load(power_portable.library)
    import ctypes
    names = ctypes.c_char.in_dll(lib._handle, "scanaot_cpu_feature_names")
    assert tuple(ctypes.string_at(ctypes.addressof(names)).decode().split(",")) == rt_cpu.FEATURES


def test_native_records_the_host_features_and_its_level():
    x = at.fvector("x")
    f = scanaot.function([x], x * 2)
    (variant,) = f.manifest["target"]["variants"]
    assert variant["cpu"] == "native" and variant["base"] in rt_cpu.LEVELS
    assert set(rt_cpu.LEVELS[variant["base"]]) <= set(variant["features"])


@pytest.mark.parametrize("bad", ["skylake", "x86-64-v5", ["native", "x86-64-v2"], 3, []])
def test_unknown_cpu_names_are_refused(tmp_path, bad):
    x = at.fvector("x")
    with pytest.raises(ValueError, match="cpu"):
        scanaot.compile([x], x, name="k", out_dir=tmp_path, cpu=bad)


def test_old_manifest_without_variants_must_be_baseline(power_portable, monkeypatch):
    from scanaot.runtime import library
    manifest = {"target": {"name": "cpu", "cpu": "native"}}
    with pytest.raises(rt.LibraryError, match="rebuild it"):
        library._check_cpu(manifest, None, "old.so")
    assert library._check_cpu({"target": {"name": "cpu", "cpu": "x86-64"}}, None, "old.so") == "x86-64"


_QEMU_LOAD = textwrap.dedent("""
    import sys, numpy as np, scanaot.runtime as rt
    try:
        lib = rt.load(sys.argv[1])
    except rt.LibraryError as err:
        print("REFUSED", err)
    else:
        print("RAN", lib.cpu_variant, lib.power(np.arange(4, dtype="float32"), 3).tolist())
""")


def _under_qemu(model: str, *args: str) -> str:
    proc = subprocess.run([QEMU, "-cpu", model, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@needs_qemu
def test_portable_library_on_an_older_cpu_runs_its_variant(power_portable):
    out = _under_qemu("Haswell", sys.executable, "-c", _QEMU_LOAD, str(power_portable.library))
    assert out.split()[:2] == ["RAN", "x86-64-v3"] and "[0.0, 1.0, 8.0, 27.0]" in out


@needs_qemu
def test_native_library_on_an_older_cpu_is_refused_not_killed(tmp_path):
    inputs, output = _power_graph()
    art = scanaot.compile(inputs, output, name="power", out_dir=tmp_path, cpu="x86-64-v4")
    out = _under_qemu("Haswell", sys.executable, "-c", _QEMU_LOAD, str(art.library))
    assert out.startswith("REFUSED") and "avx512f" in out


# ------------------------------------------------------------------ symbols, C programs
def dynamic_symbols(path: Path) -> set[str]:
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {cols[7].split("@")[0] for cols in (line.split() for line in out.splitlines())
            if len(cols) >= 8 and cols[6] != "UND" and cols[0].rstrip(":").isdigit() and cols[7]}


def test_only_entry_points_and_manifest_are_exported(power_portable):
    assert dynamic_symbols(power_portable.library) == {
        "scanaot_power__power", "scanaot_manifest_power", "scanaot_cpu_features", "scanaot_cpu_feature_names"}
    dynamic = subprocess.run(["readelf", "-d", str(power_portable.library)], capture_output=True, text=True,
                             check=True).stdout
    assert "Library soname: [libpower.so]" in dynamic and "SYMBOLIC" in dynamic


_PROGRAM = textwrap.dedent("""
    #include <stdio.h>
    #include <stdlib.h>
    #include "power.h"
    #include "square.h"

    /* the program's own functions with the kernels' internal names: they must not replace them */
    int32_t power(void) { return 99; }
    int32_t square(void) { return 99; }
    void *scanaot_alloc(size_t n) { (void)n; return NULL; }
    void scanaot_free(void *p) { (void)p; }
    uint64_t scanaot_cpu_features(void) { return 0; }

    int main(void) {
        float a[4] = {1, 2, 3, 4}, out[4], sq[4];
        int32_t k = 3;
        int64_t dims[1];
        scanaot_memref_float32_1d A = {a, a, 0, {4}, {1}}, OUT = {out, out, 0, {4}, {1}};
        scanaot_memref_float32_1d SQ = {sq, sq, 0, {4}, {1}};
        scanaot_memref_int32_0d K = {&k, &k, 0};
        scanaot_memref_int64_1d DIMS = {dims, dims, 0, {1}, {1}};
        int32_t s1 = power_run(&A, &K, &OUT, &DIMS);
        int32_t s2 = square_run(&A, &SQ, &DIMS);
        printf("%d %d %g %g %g %g %g\\n", s1, s2, out[0], out[1], out[2], out[3], sq[3]);
        return 0;
    }
""")


def test_c_program_with_two_headers_and_same_named_functions(tmp_path, power_portable):
    shutil.copy(power_portable.library, tmp_path)
    shutil.copy(power_portable.header, tmp_path)
    a = at.fvector("a")
    scanaot.compile([a], a * a, name="square", out_dir=tmp_path)
    (tmp_path / "main.c").write_text(_PROGRAM)
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-o", str(tmp_path / "main"), str(tmp_path / "main.c"),
                    f"-I{tmp_path}", f"-L{tmp_path}", "-lpower", "-lsquare", f"-Wl,-rpath,{tmp_path}"],
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "0", "1", "8", "27", "64", "16"]


def _power_program(tmp_path: Path, art) -> Path:
    """_PROGRAM without the second library, built against `art` in tmp_path."""
    if art.library.parent != tmp_path:
        shutil.copy(art.library, tmp_path)
        shutil.copy(art.header, tmp_path)
    program = _PROGRAM.replace('#include "square.h"', "").replace(
        "int32_t s2 = square_run(&A, &SQ, &DIMS);", "int32_t s2 = 0; sq[3] = 0;").replace(
        "uint64_t scanaot_cpu_features(void) { return 0; }", "").replace(
        "int32_t square(void) { return 99; }", "")
    (tmp_path / "main.c").write_text(program)
    subprocess.run(["cc", "-std=c11", "-o", str(tmp_path / "main"), str(tmp_path / "main.c"), f"-I{tmp_path}",
                    f"-L{tmp_path}", "-lpower", f"-Wl,-rpath,{tmp_path}"], check=True)
    return tmp_path / "main"


_TWO_PREDICTS = textwrap.dedent("""
    #include <stdio.h>
    #include "model_a.h"
    #include "model_b.h"

    int main(void) {
        float x[3] = {1, 2, 3}, a[3], b[3];
        int64_t dims[1];
        scanaot_memref_float32_1d X = {x, x, 0, {3}, {1}}, A = {a, a, 0, {3}, {1}}, B = {b, b, 0, {3}, {1}};
        scanaot_memref_int64_1d DIMS = {dims, dims, 0, {1}, {1}};
        int32_t sa = scanaot_model_a__predict(&X, &A, &DIMS);
        int32_t sb = scanaot_model_b__predict(&X, &B, &DIMS);
        printf("%d %d %g %g %g %g\\n", sa, sb, a[0], a[2], b[0], b[2]);
        return 0;
    }
""")


@pytest.mark.parametrize("order", [["-lmodel_a", "-lmodel_b"], ["-lmodel_b", "-lmodel_a"]])
def test_two_libraries_with_the_same_function_name_in_one_program(tmp_path, order):
    """Entry points carry the library's name: each call reaches its own library, whatever
    the link order."""
    x = at.fvector("x")
    scanaot.compile_many([("predict", [x], x * 3)], name="model_a", out_dir=tmp_path)
    scanaot.compile_many([("predict", [x], x * 5)], name="model_b", out_dir=tmp_path)
    (tmp_path / "main.c").write_text(_TWO_PREDICTS)
    subprocess.run(["cc", "-std=c11", "-Wall", "-o", str(tmp_path / "main"), str(tmp_path / "main.c"),
                    f"-I{tmp_path}", f"-L{tmp_path}", *order, f"-Wl,-rpath,{tmp_path}"], check=True)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "0", "3", "9", "5", "15"]


@needs_qemu
def test_c_caller_on_a_cpu_without_any_variant_gets_a_status(tmp_path):
    inputs, output = _power_graph()
    art = scanaot.compile(inputs, output, name="power", out_dir=tmp_path, cpu="x86-64-v4")
    out = _under_qemu("Haswell", str(_power_program(tmp_path, art)))
    assert out.split()[0] == "256"  # SCANAOT_STATUS_CPU_UNSUPPORTED, not SIGILL


@needs_qemu
@pytest.mark.parametrize("model", ["Nehalem", "Haswell"])
def test_c_caller_of_a_portable_library_on_older_cpus(tmp_path, power_portable, model):
    """numpy itself needs more than Nehalem has, so the x86-64-v2 variant is checked from C."""
    out = _under_qemu(model, str(_power_program(tmp_path, power_portable)))
    assert out.split() == ["0", "0", "1", "8", "27", "64", "0"]


def test_pinned_sha256(power_portable):
    import hashlib
    data = power_portable.library.read_bytes()
    good = hashlib.sha256(data).hexdigest()
    assert rt.load(power_portable.library, sha256=good.upper()).power is not None
    with pytest.raises(rt.LibraryError, match="is not the pinned"):
        rt.load(power_portable.library, sha256="0" * 64)


# ------------------------------------------------------------------ huge n_steps inside a kernel
@pytest.mark.parametrize("n", [10**12, 2**60, 2**61, 2**63 - 1])
def test_huge_n_steps_of_an_internal_until_history(n):
    """The whole history is summed inside the kernel (no output the caller sizes): memory
    follows the steps run (the allocator reserves no memory for untouched pages) and an
    n_steps whose history could never exist is a status error, never a crash or a wrapped size."""
    x, steps = at.dscalar("x"), at.lscalar("n")
    r, _ = scanaot.scan(lambda p: (p * 2, scanaot.until(p > 40)), outputs_info=x, n_steps=steps)
    f = scanaot.function([x, steps], r.sum())
    if n <= 10**12:
        assert f(1.0, n) == 2 + 4 + 8 + 16 + 32 + 64 + 128
    else:
        with pytest.raises(rt.StatusError, match="n_steps"):
            f(1.0, n)


def test_without_memfd_the_private_copy_is_mapped(tmp_path, monkeypatch, power_portable):
    """Where memfds cannot be executed (vm.memfd_noexec), a private copy under
    SCANAOT_LOAD_DIR is mapped instead and removed at once."""
    from scanaot.runtime import loader
    monkeypatch.setattr(loader, "_open_memfd", lambda data, key: None)
    monkeypatch.setattr(loader, "_handles", {})
    monkeypatch.setenv("SCANAOT_LOAD_DIR", str(tmp_path))
    lib = rt.load(power_portable.library)
    np.testing.assert_allclose(lib.power(np.arange(3, dtype="float32"), 2), [0, 1, 4])
    assert not list(tmp_path.iterdir())  # the private folder went once the copy was mapped


_OUT_OF_MEMORY = textwrap.dedent("""
    import resource, numpy as np, scanaot, scanaot.tensor as at, scanaot.runtime as rt
    x, n = at.dvector("x"), at.lscalar("n")
    r, _ = scanaot.scan(lambda p: p * 2.0, outputs_info=x, n_steps=n)
    f = scanaot.function([x, n], r.sum())      # the history is a temporary inside the kernel
    small = f(np.ones(4), 3)
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        f(np.ones(1 << 20), 1000)              # 8 GB of history under a 4 GB address-space limit
    except rt.StatusError as err:
        print("STATUS", "no memory left" in str(err))
    print("AGAIN", f(np.ones(4), 3) == small)
""")


def test_failed_allocation_is_a_status_not_a_crash():
    proc = subprocess.run([sys.executable, "-c", _OUT_OF_MEMORY], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["STATUS", "True", "AGAIN", "True"]


def test_unusable_cache_folder_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SCANAOT_CACHE", str(blocker / "cache"))
    with pytest.raises(cache.CacheError, match="set SCANAOT_CACHE"):
        cache.cache_dir()
    monkeypatch.setenv("SCANAOT_CACHE", str(blocker))
    with pytest.raises(cache.CacheError, match="File exists.*set SCANAOT_CACHE"):
        cache.cache_dir()


@pytest.mark.parametrize("name", ["malloc", "free", "expf", "logf", "memcpy", "scanaot_alloc", "main"])
def test_functions_named_like_c_library_symbols_work(tmp_path, name):
    """The emitted function is `scanaot_kernel_NAME` inside the library, never NAME."""
    x = at.fvector("x")
    art = scanaot.compile_many([(name, [x], at.exp(x) * 2)], name="lib", out_dir=tmp_path)
    got = rt.load(art.library)[name](np.zeros(2, "float32"))
    np.testing.assert_array_equal(got, [2, 2])


@pytest.mark.parametrize("name", ["café", "Ω", "_x", "f__x86_64_v3", "trailing_", "9lives", "a-b", "", "x" * 101])
def test_names_that_cannot_be_symbols_are_refused_at_compile_time(tmp_path, name):
    x = at.fvector("x")
    with pytest.raises(ValueError, match="ASCII C identifier"):
        scanaot.compile_many([(name, [x], x)], name="lib", out_dir=tmp_path)
    with pytest.raises(ValueError, match="ASCII C identifier"):
        scanaot.compile([x], x, name=name, out_dir=tmp_path)


def test_a_folder_of_other_files_is_never_used_as_the_cache(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "src").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    (home / "data.so").write_text("mine")
    os.chmod(home, 0o755)
    monkeypatch.setenv("SCANAOT_CACHE", str(home))
    with pytest.raises(cache.CacheError, match="holds files scanaot did not write"):
        cache.clear()
    assert sorted(p.name for p in home.iterdir()) == ["data.so", "notes.txt", "src"]
    assert home.stat().st_mode & 0o777 == 0o755


def test_the_cache_folder_is_tagged_and_clear_keeps_the_tag(tmp_path, monkeypatch):
    root = tmp_path / "c"
    monkeypatch.setenv("SCANAOT_CACHE", str(root))
    x = at.fvector("x")
    scanaot.function([x], x + 7)
    assert (root / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert cache.clear() == 1
    assert [p.name for p in root.iterdir()] == ["CACHEDIR.TAG"]


def test_a_symlinked_cache_folder_is_followed(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / "link"))
    x = at.fvector("x")
    np.testing.assert_array_equal(scanaot.function([x], x + 8)(np.zeros(1, "float32")), [8])
    assert (tmp_path / "real" / "CACHEDIR.TAG").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "-1", "lots"])
def test_bad_cache_limits_name_the_variable(monkeypatch, value):
    monkeypatch.setenv("SCANAOT_CACHE_MAX_MB", value)
    with pytest.raises(ValueError, match="SCANAOT_CACHE_MAX_MB"):
        cache.limit_bytes()


_FD_REUSE = textwrap.dedent("""
    import os, sys, numpy as np, scanaot.runtime as rt
    from scanaot.runtime import loader
    first = rt.load(sys.argv[1])
    os.close(loader._descriptors[0])     # a daemonizer's closerange: the next memfd reuses the number
    second = rt.load(sys.argv[2])
    print(second.k(np.arange(3, dtype="float32")).tolist(), first.k(np.arange(3, dtype="float32")).tolist())
""")


def test_a_reused_descriptor_number_never_serves_the_old_code(tmp_path):
    x = at.fvector("x")
    a = scanaot.compile([x], x * 2, name="k", out_dir=tmp_path / "a").library
    b = scanaot.compile([x], x * 100, name="k", out_dir=tmp_path / "b").library
    proc = subprocess.run([sys.executable, "-c", _FD_REUSE, str(a), str(b)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("]")[0] == "[0.0, 100.0, 200.0"


_FORKED_PRIVATE_COPIES = textwrap.dedent("""
    import os, sys, numpy as np, scanaot.runtime as rt
    from scanaot.runtime import loader
    loader._open_memfd = lambda data, key: None      # as where memfds cannot be executed
    rt.load(sys.argv[1])
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                ok = rt.load(sys.argv[2]).k(np.ones(2, "float32")).tolist() == [100.0, 100.0]
            except Exception:
                ok = False
            os._exit(0 if ok else 1)
        children.append(pid)
    print(sum(os.waitpid(pid, 0)[1] != 0 for pid in children))
""")


def test_forked_workers_map_private_copies_of_their_own(tmp_path):
    x = at.fvector("x")
    a = scanaot.compile([x], x * 2, name="k", out_dir=tmp_path / "a").library
    b = scanaot.compile([x], x * 100, name="k", out_dir=tmp_path / "b").library
    env = {**os.environ, "SCANAOT_LOAD_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", _FORKED_PRIVATE_COPIES, str(a), str(b)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["0"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("scanaot-load-")]  # removed at exit


def test_headers_survive_c_library_macros(tmp_path):
    """Arguments named like <complex.h>'s I or <errno.h>'s errno keep their names in
    Python; the header's prototype still compiles after those headers."""
    i, e = at.fvector("I"), at.fvector("errno")
    art = scanaot.compile([i, e], i + e, name="mac", out_dir=tmp_path)
    (tmp_path / "use.c").write_text('#include <complex.h>\n#include <errno.h>\n#include <stdio.h>\n'
                                   '#include "mac.h"\nint main(void) { return 0; }\n')
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-fsyntax-only", f"-I{tmp_path}",
                    str(tmp_path / "use.c")], check=True)
    lib = rt.load(art.library)
    np.testing.assert_array_equal(lib.mac(I=np.ones(2, "float32"), errno=np.ones(2, "float32")), [2, 2])


_NO_LEAK_ON_FAILURE = textwrap.dedent("""
    import resource, numpy as np, scanaot, scanaot.tensor as at, scanaot.runtime as rt
    x, n1, n2 = at.dvector("x"), at.lscalar("n1"), at.lscalar("n2")
    r1, _ = scanaot.scan(lambda p: p * 2.0, outputs_info=x, n_steps=n1)
    r2, _ = scanaot.scan(lambda p: p + 1.0, outputs_info=x, n_steps=n2)
    f = scanaot.function([x, n1, n2], r1.sum() + r2.sum())   # two temporaries inside the kernel
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
    big = np.ones(1 << 20)
    failed = 0
    for _ in range(8):
        try:
            f(big, 300, 1000)            # 2.4 GB succeeds, then 8 GB fails
        except rt.StatusError:
            failed += 1
    print(failed, bool(f(big, 300, 3) > 0))   # the 2.4 GB of every failed call were given back
""")


def test_a_failed_call_gives_back_what_it_had_allocated():
    proc = subprocess.run([sys.executable, "-c", _NO_LEAK_ON_FAILURE], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["8", "True"]


# ------------------------------------------------------------------ libraries travel by value
_UNPICKLE_NUMPY_ONLY = textwrap.dedent("""
    import pickle, sys, numpy as np
    sys.modules["mlir"] = None                 # the worker has the runtime only
    kernel = pickle.loads(sys.stdin.buffer.read())
    print(kernel(np.arange(3, dtype="float32")).tolist())
""")


def test_libraries_and_kernels_pickle_as_their_sealed_bytes(tmp_path):
    import pickle
    x = at.fvector("x")
    art = scanaot.compile_many([("dbl", [x], x * 2), ("tri", [x], x * 3)], name="pk", out_dir=tmp_path)
    lib = rt.load(art.library)
    both = pickle.dumps([lib.dbl, lib.tri])
    assert len(both) < art.library.stat().st_size + 1000  # the bytes once per pickle
    dbl, tri = pickle.loads(both)
    assert dbl.library is tri.library
    np.testing.assert_array_equal(tri(np.ones(2, "float32")), [3, 3])
    proc = subprocess.run([sys.executable, "-c", _UNPICKLE_NUMPY_ONLY], input=pickle.dumps(lib.dbl),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().split() == ["[0.0,", "2.0,", "4.0]"]


def test_a_damaged_pickle_is_refused_by_the_seal(tmp_path):
    import pickle
    x = at.fvector("x")
    lib = rt.load(scanaot.compile([x], x * 2, name="pk", out_dir=tmp_path).library)
    data = bytearray(pickle.dumps(lib))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(rt.LibraryError, match="digest"):
        pickle.loads(bytes(data))
