"""The `scanaot` command line: model files with gradient kernels, one-line errors and
their exit codes, --version, python -m scanaot, bench --short, the cache commands, and
a numpy-only install (the compiler extra blocked, not uninstalled)."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
from scanaot.tools import bench, cli

MODEL = """
import scanaot, scanaot.tensor as at
k = at.iscalar("k"); A = at.fvector("A")
result, _ = scanaot.scan(lambda p, A: p * A, outputs_info=at.ones_like(A), non_sequences=A, n_steps=k)
EXPORTS = {"power": ([A, k], result[-1]), "total": ([A, k], result[-1].sum(), [A])}
"""

# python -c prelude: the compiler extra's modules made unimportable, as in `pip install scanaot`
NO_COMPILER = "import sys; sys.modules['mlir'] = sys.modules['llvm'] = None; from scanaot.tools.cli import main; "


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of one in-process CLI run."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err, command, *fragments):
    assert err.count("\n") == 1 and err.startswith(f"scanaot {command}: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """libmodel.so built by `scanaot compile` from MODEL (power, total, total_vjp)."""
    root = tmp_path_factory.mktemp("cli")
    model = write(root / "model.py", MODEL)
    assert cli.main(["compile", str(model), "-o", str(root / "out")]) == 0
    return root / "out" / "libmodel.so"


# ---------------------------------------------------------------- compile
def test_compile_exports_the_gradient_kernel_of_a_three_part_entry(library):
    lib = rt.load(library)
    A, k = np.linspace(0.5, 1.5, 5, dtype="float32"), np.int32(3)
    np.testing.assert_allclose(lib.power(A, k), A ** 3, rtol=1e-6)
    grad = lib.total.vjp(A, k, cotangents=[np.float32(1)])  # one wrt: one array
    np.testing.assert_allclose(grad, 3 * A ** 2, rtol=1e-5)
    assert "total_vjp" in {f["name"] for f in rt.manifest.read(library.read_bytes(), str(library))["functions"]}


def test_compile_one_function_by_name(tmp_path, capsys):
    model = write(tmp_path / "model.py", MODEL)
    code, out, _ = run_cli(capsys, "compile", f"{model}:power", "-o", tmp_path / "out")
    assert code == 0 and "libpower.so" in out and "(1 function(s)" in out
    code, _, err = run_cli(capsys, "compile", f"{model}:nope", "-o", tmp_path / "out")
    assert code == cli.EXIT_USAGE
    assert_one_line_error(err, "compile", "exports no 'nope'; it has power, total")


@pytest.mark.parametrize("exports, fragments", [
    ('{"f": (A, A * 2, [A], 1)}', ["EXPORTS['f'] must be (inputs, outputs) or (inputs, outputs, grad_wrt)",
                                   "got a 4-tuple"]),
    ('{"f": A}', ["EXPORTS['f'] must be", "got Variable"]),
    ('{"f": (A, A * 2)}', ["EXPORTS['f']: inputs must be a list of variables"]),
    ('{"f": ([A], A.sum(), A)}', ["EXPORTS['f']: grad_wrt must be a list of input variables"]),
    ('{1: ([A], A * 2)}', ["EXPORTS[1]: a name must be a string"]),
    ('[([A], A * 2)]', ["must define EXPORTS = {name: (inputs, outputs)}"]),
    ('{"f": ([A, 3], A * 2)}', ["TypeError: f: inputs[1] must be a symbolic input variable"]),
])
def test_bad_exports_entries_are_one_line_errors_naming_the_entry(tmp_path, capsys, exports, fragments):
    model = write(tmp_path / "bad.py", f"import scanaot.tensor as at\nA = at.vector('A')\nEXPORTS = {exports}\n")
    code, _, err = run_cli(capsys, "compile", model, "-o", tmp_path / "out")
    assert code == cli.EXIT_FAILURE
    assert_one_line_error(err, "compile", *fragments)


def test_a_model_file_that_raises_names_its_line(tmp_path, capsys):
    model = write(tmp_path / "raises.py", "def f():\n    raise ValueError('boom')\nf()\n")
    code, _, err = run_cli(capsys, "compile", model, "-o", tmp_path / "out")
    assert code == cli.EXIT_FAILURE
    assert_one_line_error(err, "compile", f"{model}:2: ValueError: boom")


def test_a_model_file_with_a_syntax_error(tmp_path, capsys):
    model = write(tmp_path / "syntax.py", "x = 1\ndef (\n")
    code, _, err = run_cli(capsys, "compile", model, "-o", tmp_path / "out")
    assert code == cli.EXIT_FAILURE
    assert_one_line_error(err, "compile", f"{model}:2: SyntaxError")


def test_paths_of_the_wrong_kind_are_usage_errors(tmp_path, capsys):
    model = write(tmp_path / "model.py", MODEL)
    a_file = write(tmp_path / "a_file", "")
    code, _, err = run_cli(capsys, "compile", model, "-o", a_file)
    assert code == cli.EXIT_USAGE
    assert_one_line_error(err, "compile", f"-o {a_file}: exists and is not a directory")
    code, _, err = run_cli(capsys, "compile", tmp_path / "missing.py", "-o", tmp_path)
    assert code == cli.EXIT_USAGE
    assert_one_line_error(err, "compile", "missing.py: no such file")


def test_a_compile_error_is_one_line(tmp_path, capsys):
    """A program scanaot cannot compile (an output shape known only after the call)."""
    model = write(tmp_path / "model.py", textwrap.dedent("""
        import scanaot.tensor as at
        x = at.fvector("x")
        EXPORTS = {"f": ([x], at.arange(x.sum()))}
    """))
    code, _, err = run_cli(capsys, "compile", model, "-o", tmp_path / "out")
    assert code == cli.EXIT_FAILURE
    assert_one_line_error(err, "compile")


def test_an_unknown_cpu_is_a_usage_error(tmp_path, capsys):
    model = write(tmp_path / "model.py", MODEL)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compile", str(model), "--cpu", "foo", "-o", str(tmp_path / "out")])
    assert exit_.value.code == cli.EXIT_USAGE
    assert "expected portable, native" in capsys.readouterr().err


def test_argparse_errors_keep_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compile"])
    assert exit_.value.code == cli.EXIT_USAGE


# ---------------------------------------------------------------- inspect
def test_inspect(library, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "inspect", library)
    assert code == 0 and "total_vjp" in out and "A.shape[0]" in out
    code, out, _ = run_cli(capsys, "inspect", library, "--json")
    assert code == 0 and '"abi_version"' in out
    not_a_library = write(tmp_path / "model.py", MODEL)
    code, _, err = run_cli(capsys, "inspect", not_a_library)
    assert code == cli.EXIT_FAILURE
    assert_one_line_error(err, "inspect", "not a shared library")
    code, _, err = run_cli(capsys, "inspect", tmp_path / "missing.so")
    assert code == cli.EXIT_USAGE
    assert_one_line_error(err, "inspect", "missing.so: no such file")


def test_inspect_shows_shared_variables(tmp_path, capsys):
    x = scanaot.tensor.dvector("x")
    w = scanaot.shared(np.ones(3), name="w")
    art = scanaot.compile([x], (x * w).sum(), name="weighted", out_dir=tmp_path, updates=[(w, w * 2)])
    code, out, _ = run_cli(capsys, "inspect", art.library)
    assert code == 0 and "shared w: float64 3 (updated by calls)" in out
    assert "(shared w, from the state)" in out and "(updates shared w)" in out


# ---------------------------------------------------------------- --traceback, interrupts
def test_traceback_flag_and_variable_show_the_traceback(tmp_path, capsys, monkeypatch):
    model = write(tmp_path / "raises.py", "raise ValueError('boom')\n")
    for argv in (["--traceback", "compile", model], ["compile", model, "--traceback"]):
        code, _, err = run_cli(capsys, *argv, "-o", tmp_path / "out")
        assert code == cli.EXIT_FAILURE and "Traceback" in err
        assert err.rstrip().splitlines()[-1] == f"scanaot compile: {model}:1: ValueError: boom"
    monkeypatch.setenv("SCANAOT_TRACEBACK", "1")
    code, _, err = run_cli(capsys, "compile", model, "-o", tmp_path / "out")
    assert "Traceback" in err


def test_interrupt_exits_130(monkeypatch, capsys, library):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "inspect_library", interrupted)
    code, _, err = run_cli(capsys, "inspect", library)
    assert code == cli.EXIT_INTERRUPTED
    assert_one_line_error(err, "inspect", "interrupted")


def test_a_missing_compiler_module_met_late_is_exit_3():
    code, message = cli.classify(ModuleNotFoundError("No module named 'mlir.ir'", name="mlir.ir"))
    assert code == cli.EXIT_MISSING and 'pip install "scanaot[compiler]"' in message


# ---------------------------------------------------------------- bench
@pytest.fixture
def fake_pytest_main(monkeypatch):
    """pytest.main replaced: records its arguments, returns what the test sets."""
    import pytest as pytest_module
    calls = {"return": 0}

    def main(args):
        calls["args"] = args
        return calls["return"]
    monkeypatch.setattr(pytest_module, "main", main)
    monkeypatch.delenv("SCANAOT_BENCH_SIZE", raising=False)
    return calls


def test_bench_short_times_nothing(fake_pytest_main, capsys, monkeypatch):
    code, out, _ = run_cli(capsys, "bench", "--short")
    monkeypatch.delenv("SCANAOT_BENCH_SIZE", raising=False)  # main set it for the suite
    assert code == 0 and "--benchmark-disable" in fake_pytest_main["args"]
    assert not any(a.startswith("--benchmark-json") for a in fake_pytest_main["args"])
    assert "nothing timed" in out and "median" not in out


def test_bench_usage_errors(fake_pytest_main, capsys, monkeypatch):
    code, _, err = run_cli(capsys, "bench", "--short", "--plot", "x.png")
    assert code == cli.EXIT_USAGE
    assert_one_line_error(err, "bench", "--short times nothing")
    fake_pytest_main["return"] = 5  # pytest: no tests collected
    code, _, err = run_cli(capsys, "bench", "--short", "-k", "W99")
    monkeypatch.delenv("SCANAOT_BENCH_SIZE", raising=False)
    assert code == cli.EXIT_USAGE
    assert_one_line_error(err, "bench", "-k 'W99' selects no benchmark")


def test_bench_titles_give_the_sizes_of_the_run(monkeypatch):
    w2 = next(w for w in bench.WORKLOADS if w.name == "W2")
    monkeypatch.delenv("SCANAOT_BENCH_SIZE", raising=False)
    assert w2.title == "triangular (10**6 steps)"
    monkeypatch.setenv("SCANAOT_BENCH_SIZE", "short")
    assert w2.title == f"triangular ({bench.SHORT['triangular']} steps)"


# ---------------------------------------------------------------- cache
def test_cache_info_and_clear(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / "cache"))
    code, out, _ = run_cli(capsys, "cache", "info")
    assert code == 0 and f"path:    {tmp_path / 'cache'}" in out and "entries: 0" in out
    code, out, _ = run_cli(capsys, "cache", "info", "--json")
    assert code == 0 and set(__import__("json").loads(out)) == {"path", "entries", "bytes", "limit_bytes"}
    code, out, _ = run_cli(capsys, "cache", "clear")
    assert code == 0 and out.startswith("removed 0 entries from ")


# ---------------------------------------------------------------- subprocesses
def python(*args, **kwargs):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, **kwargs)


def test_version_and_python_dash_m():
    proc = python("-m", "scanaot", "--version")
    assert proc.returncode == 0, proc.stderr
    first, toolchain = proc.stdout.splitlines()
    assert first == f"scanaot {scanaot.__version__}"
    assert toolchain.startswith("toolchain: xtc-mlir-python-bindings ")
    proc = python("-m", "scanaot", "inspect", "nope.so")
    assert proc.returncode == cli.EXIT_USAGE and proc.stderr == "scanaot inspect: library nope.so: no such file\n"


def test_a_closed_stdout_is_quiet(library):
    """`scanaot inspect --json | head`: no BrokenPipeError traceback, exit 141."""
    proc = subprocess.Popen([sys.executable, "-m", "scanaot", "inspect", "--json", str(library)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the child (still importing) writes anything
    err = proc.stderr.read().decode()
    assert proc.wait() == cli.EXIT_BROKEN_PIPE and err == ""


def test_without_the_compiler_extra(library, tmp_path):
    model = write(tmp_path / "model.py", MODEL)
    proc = python("-c", NO_COMPILER + f"sys.exit(main(['compile', {str(model)!r}, '-o', {str(tmp_path)!r}]))")
    assert proc.returncode == cli.EXIT_MISSING
    assert proc.stderr == ("scanaot compile: no module 'mlir': install the compiler extra: "
                           'pip install "scanaot[compiler]"\n')
    proc = python("-c", NO_COMPILER + f"sys.exit(main(['inspect', {str(library)!r}]))")
    assert proc.returncode == 0 and "total_vjp" in proc.stdout, proc.stderr


def test_version_without_the_compiler_extra(monkeypatch):
    from importlib import metadata
    real = metadata.version

    def version(name):
        if name.startswith("xtc-"):
            raise metadata.PackageNotFoundError(name)
        return real(name)
    monkeypatch.setattr(metadata, "version", version)
    assert cli.versions().splitlines()[1] == ('toolchain: compiler extra not installed (install the compiler '
                                              'extra: pip install "scanaot[compiler]")')


def test_inspect_escapes_control_characters(capsys):
    """Manifest text is data: an escape sequence in it reaches the terminal escaped."""
    cli._show("shape \x1b]0;pwned\x07 end")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;pwned\\x07" in out
