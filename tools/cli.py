"""The `scanaot` command line (also `python -m scanaot`).

    scanaot compile MODEL.py[:NAME] [--target cpu|cuda] [--cpu CPU] [--arch SM] [--fastmath MODE] -o DIR
        compile the functions MODEL.py exports into DIR/libMODEL.so and DIR/MODEL.h
    scanaot inspect LIB.so [--json]
        print a library's manifest: functions, arguments, output shapes, target
        (needs only the runtime: works without the compiler extra)
    scanaot bench [--short] [--plot PNG] [--json PATH] [-k EXPR]
        run the benchmark suite (tests/benchmarks/test_suite.py) and print the table;
        --short: tiny sizes, every implementation checked, nothing timed
    scanaot demo [-o DIR] [--ir STAGE]
        compile every example of the scan guide to a .so, run it through the
        runtime, print what it prints and where the artifacts are
    scanaot cache info | cache clear
        where the compile cache is and what it holds; empty it
    scanaot keygen KEYFILE
        a new Ed25519 signing key: KEYFILE (private, 0600) and KEYFILE.pub
    scanaot sign LIB.so --key KEYFILE
        write LIB.so.sig; a service loads it with rt.load(LIB, trusted_keys=[...])
    scanaot --version
        the scanaot version and, with the compiler extra, the toolchain's

A model file is a Python file that traces its functions and lists them in a
module-level dict `EXPORTS = {"name": (inputs, outputs), ...}`; an entry
`(inputs, outputs, grad_wrt)` also exports the gradient kernel `name_vjp`.

Errors are one line on stderr, `scanaot COMMAND: MESSAGE`; `--traceback` (or
SCANAOT_TRACEBACK=1) prints the full traceback as well. Exit codes:

    0    success
    1    failure: a compile error, a model file that raises, a file that is not
         a scanaot library, a benchmark or demo check that fails
    2    usage: a bad option or argument (argparse's own errors too), a path
         that does not exist or is of the wrong kind, an unknown MODEL.py:NAME,
         a bench -k that selects nothing
    3    a missing dependency: the compiler extra, or the bench extra for `bench`
    130  interrupted (Ctrl-C)
    141  stdout closed early (`scanaot inspect --json | head`): nothing more is
         printed, the status a shell reports for a tool ended by SIGPIPE
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, NoReturn

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_MISSING = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141

# The top-level modules the compiler extra's wheels provide (mlir: the bindings and
# mlir-translate; llvm: opt and llc).
COMPILER_MODULES = ("mlir", "llvm")
INSTALL_COMPILER = 'install the compiler extra: pip install "scanaot[compiler]"'
INSTALL_BENCH = 'install the bench extra: pip install "scanaot[compiler,bench]"'


class CliError(Exception):
    """A failure the user can act on: printed as one line, the process exits with `code`."""

    code = EXIT_FAILURE

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UsageError(CliError):
    """The command line itself is wrong (exit 2, as argparse's own errors)."""

    code = EXIT_USAGE


class MissingDependency(CliError):
    """An optional dependency the command needs is not installed (exit 3)."""

    code = EXIT_MISSING


# ---------------------------------------------------------------- preconditions
def require(modules: tuple[str, ...], hint: str) -> None:
    """Fail before any work when a module the command needs cannot be imported.

    Checked up front so that a numpy-only install says which extra to install,
    not `No module named 'mlir'` from deep inside the compiler."""
    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise MissingDependency(f"no module {name!r}: {hint}")


def existing_file(path: str, what: str) -> Path:
    """`path` as a Path, or a usage error when no such file exists."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{what} {path}: no such file" if not file.exists() else f"{what} {path}: not a file")
    return file


def output_dir(path: str) -> Path:
    """The -o directory; a usage error when it names something that is not a directory."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {path}: exists and is not a directory")
    return out


# ---------------------------------------------------------------- compile
def compile_model(args: argparse.Namespace) -> int:
    """Compile a model file's EXPORTS (or one of them) into one library."""
    require(COMPILER_MODULES, INSTALL_COMPILER)
    model, only = split_model_arg(args.model)
    out_dir = output_dir(args.output)
    exports = model_exports(model)
    if only:
        if only not in exports:
            raise UsageError(f"{model} exports no {only!r}; it has {', '.join(exports)}")
        exports = {only: exports[only]}
    import scanaot

    start = time.perf_counter()
    art = scanaot.compile_many(export_entries(model, exports), name=only or model.stem.replace("-", "_"),
                               target=args.target, out_dir=out_dir, cpu=args.cpu, arch=args.arch,
                               fastmath=args.fastmath)
    print(f"{art.library}\n{art.header}\n({len(exports)} function(s), {time.perf_counter() - start:.2f} s)")
    return EXIT_OK


def split_model_arg(arg: str) -> tuple[Path, str]:
    """MODEL.py[:NAME] -> (the model file, NAME or ""); a path that itself holds ':' is kept whole."""
    path, sep, only = arg.rpartition(":")
    if not sep or Path(arg).is_file():
        path, only = arg, ""
    return existing_file(path, "model file"), only


def load_model(model: Path) -> ModuleType:
    """Run the model file as a module; what it raises becomes one line naming the file and line."""
    spec = importlib.util.spec_from_file_location(f"scanaot_model_{model.stem}", model)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise CliError(f"{model}:{err.lineno}: SyntaxError: {err.msg}") from err
    except Exception as err:
        code = EXIT_MISSING if isinstance(err, ModuleNotFoundError) else EXIT_FAILURE
        where = f"{model}:{_line_in(err.__traceback__, model)}"
        raise CliError(f"{where}: {type(err).__name__}: {_one_line(str(err))}", code) from err
    return module


def _line_in(tb: TracebackType | None, model: Path) -> int | str:
    """The line of `model` deepest in the traceback (where the model file called what raised)."""
    line: int | str = "?"
    for frame, lineno in traceback.walk_tb(tb):
        if Path(frame.f_code.co_filename).resolve() == model.resolve():
            line = lineno
    return line


def model_exports(model: Path) -> dict[str, tuple]:
    """The model file's EXPORTS dict, checked to be a non-empty dict."""
    exports = getattr(load_model(model), "EXPORTS", None)
    if not isinstance(exports, dict) or not exports:
        raise CliError(f"{model} must define EXPORTS = {{name: (inputs, outputs)}} or "
                       f"{{name: (inputs, outputs, grad_wrt)}}")
    return exports


def export_entries(model: Path, exports: dict[str, Any]) -> list[tuple]:
    """EXPORTS as compile_many entries: (name, inputs, outputs[, grad_wrt]).

    Only the entries' form is checked here, each error naming the entry; what the
    variables themselves must be, compile_many checks (its errors name the function)."""
    entries = []
    for name, entry in exports.items():
        where = f"{model}: EXPORTS[{name!r}]"
        if not isinstance(name, str):
            raise CliError(f"{where}: a name must be a string")
        if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
            got = f"a {len(entry)}-tuple" if isinstance(entry, (tuple, list)) else type(entry).__name__
            raise CliError(f"{where} must be (inputs, outputs) or (inputs, outputs, grad_wrt); got {got}")
        if not isinstance(entry[0], (tuple, list)):
            raise CliError(f"{where}: inputs must be a list of variables, got {type(entry[0]).__name__}")
        if len(entry) == 3 and not isinstance(entry[2], (tuple, list)):
            raise CliError(f"{where}: grad_wrt must be a list of input variables, got {type(entry[2]).__name__}")
        entries.append((name, *entry))
    return entries


# ---------------------------------------------------------------- inspect
def _show(line: str) -> None:
    """Print a line of manifest text with control characters escaped: a manifest is
    data from a file, and must not drive the terminal."""
    print("".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in line))


def inspect_library(args: argparse.Namespace) -> int:
    """Print a library's manifest; needs only the numpy runtime."""
    from scanaot.runtime import LibraryError, manifest as manifest_mod
    from scanaot.runtime.cpu import LEVELS

    path = existing_file(args.library, "library")
    try:
        m = manifest_mod.read(path.read_bytes(), args.library)
    except (OSError, LibraryError) as err:
        raise CliError(str(err)) from err
    if args.json:
        print(json.dumps(m, indent=2))  # JSON escapes control characters
        return EXIT_OK
    t = m["target"]
    _show(f"{args.library}: scanaot ABI {m['abi_version']}, target {t['name']} ({t['triple']}, cpu {t['cpu']}, "
          f"fastmath {t.get('fastmath', 'none')})")
    for v in t.get("variants", []):
        extra = [f for f in v["features"] if f not in LEVELS.get(v.get("base", ""), ())]
        base = f"{v['base']} + {', '.join(extra)}" if extra else v.get("base", v["cpu"])
        _show(f"cpu variant {v['cpu']}: {base}" + (f" (tuned for {v['tune']})" if v.get("tune") else ""))
    if t["name"] == "cuda":
        code = t.get("device_code", {})
        _show(f"device code: {code.get('format')} for {t['arch']}, {code.get('kernels')} kernel(s); "
              f"ptxas: {t.get('ptxas') or 'not found (PTX, compiled by the driver at load)'}")
    _show(f"compiler: scanaot {m['compiler']['scanaot']}, toolchain {m['compiler']['toolchain']}")
    for v in m.get("shared", []):
        shape = "x".join(str(d) for d in v["shape"]) or "scalar"
        _show(f"shared {v['name']}: {v['dtype']} {shape}" + (" (updated by calls)" if v["updated"] else ""))
    for f in m["functions"]:
        _show(f"\n{f['name']}  (symbol {f['symbol']}, graph {f['graph_hash'][:16]}, "
              f"workspace {f['workspace_bytes']} bytes)")
        for a in f["args"]:
            host = "  (read by host code: device arrays are staged)" if a.get("host_access") else ""
            role = f"  (shared {a['shared']}, from the state)" if "shared" in a else ""
            _show(f"  arg    {a['name']}: {a['dtype']}[{a['ndim']}d]{host}{role}")
        for o in f["outputs"]:
            dims = ", ".join(t + (" (bound)" if b else "") for t, b in zip(o["shape_text"], o["bounded"]))
            role = f"  (updates shared {o['updates']})" if "updates" in o else ""
            _show(f"  output {o['name']}: {o['dtype']}[{dims}]{role}")
        for c in f["constraints"]:
            op = "==" if c["rel"] == "eq" else ">="
            _show(f"  check  {c['text'][0]} {op} {c['text'][1]}  ({c['why']})")
    return EXIT_OK


# ---------------------------------------------------------------- demo
def demo(args: argparse.Namespace) -> int:
    """Compile and run every guide example as a .so; exit 1 when one gives a different result."""
    require(COMPILER_MODULES, INSTALL_COMPILER)
    import scanaot
    import scanaot.runtime as rt
    from scanaot.packaging.function import record_functions
    from scanaot.tools.guide_examples import EXAMPLES

    out_dir = output_dir(args.output)
    for name, example in EXAMPLES.items():
        print(f"== {name}")
        out = io.StringIO()
        with record_functions() as made, contextlib.redirect_stdout(out):
            example()
        print(out.getvalue().rstrip())
        for k, f in enumerate(made):
            lib_name = name if len(made) == 1 else f"{name}_{k}"
            start = time.perf_counter()
            art = scanaot.compile(f.spec.inputs, f.spec.outputs, name=lib_name, out_dir=out_dir,
                                  target=args.target)
            elapsed = time.perf_counter() - start
            try:
                kernel = rt.load(art.library)[lib_name]
            except rt.LibraryError as err:  # a cuda library on a machine without a GPU
                print(f"   artifacts: {art.library}, {art.header} (compile {elapsed:.2f} s)\n"
                      f"   not run here: {err}")
                continue
            for arrays, expected in f.calls:
                got = kernel(*arrays)
                got = list(got) if isinstance(got, tuple) else [got]
                same = all(g.shape == e.shape and _same(g, e, args.target) for g, e in zip(got, expected))
                print(f"   {art.library.name} via scanaot.runtime: {'same result' if same else 'DIFFERENT'}")
                if not same:
                    raise CliError(f"{lib_name}: the library's result differs from the traced function's")
            print(f"   artifacts: {art.library}, {art.header} (compile {elapsed:.2f} s)")
            if args.ir:
                print(art.ir(args.ir))
    return EXIT_OK


def _same(got, expected, target: str) -> bool:
    """Bitwise on the CPU; the GPU's math functions round differently in the last bits."""
    import numpy as np
    if target == "cpu" or expected.dtype.kind not in "fc":
        return bool((got == expected).all())
    return bool(np.allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True))


# ---------------------------------------------------------------- bench
# pytest.main's exit codes -> ours (pytest: 1 tests failed, 2 interrupted,
# 3 internal error, 4 usage error, 5 no tests collected).
PYTEST_EXIT = {0: EXIT_OK, 1: EXIT_FAILURE, 2: EXIT_INTERRUPTED, 3: EXIT_FAILURE, 4: EXIT_USAGE}


def bench(args: argparse.Namespace) -> int:
    """Run the benchmark suite; --short checks every implementation at tiny sizes and times nothing."""
    if args.short and (args.plot or args.json):
        raise UsageError("--short times nothing, so it has no --plot or --json")
    require(("pytest", "pytest_benchmark"), INSTALL_BENCH)
    require(COMPILER_MODULES, INSTALL_COMPILER)
    suite = Path(__file__).resolve().parents[1] / "tests" / "benchmarks" / "test_suite.py"
    if not suite.exists():
        raise CliError("the suite lives in the source tree (tests/benchmarks); run it from a checkout "
                       "installed with pip install -e '.[compiler,bench]'")
    code = _run_suite(suite, args)
    if code == 5:
        raise UsageError(f"-k {args.k!r} selects no benchmark" if args.k else "the suite collected no benchmark")
    if code:
        return PYTEST_EXIT.get(code, EXIT_FAILURE)
    if args.short:
        print("\nshort run (tiny sizes): every implementation checked against numpy; nothing timed")
        return EXIT_OK
    _print_report(Path(args.json), args.plot)
    return EXIT_OK


def _run_suite(suite: Path, args: argparse.Namespace) -> int:
    """pytest over the suite: timed and written to args.json, or (--short) a correctness run."""
    import tempfile

    import pytest

    pytest_args = [str(suite), "-m", "benchmark", "-q", "-p", "no:cacheprovider"]
    if args.short:
        os.environ["SCANAOT_BENCH_SIZE"] = "short"
        pytest_args.append("--benchmark-disable")
    else:
        args.json = args.json or str(Path(tempfile.mkdtemp(prefix="scanaot-bench-")) / "bench.json")
        pytest_args += [f"--benchmark-json={args.json}", "--benchmark-columns=median,iqr,rounds"]
    if args.k:
        pytest_args += ["-k", args.k]
    return int(pytest.main(pytest_args))


def _print_report(json_path: Path, plot: str | None) -> None:
    """The table of medians (ratios to C) from pytest-benchmark's JSON, and the plot if asked."""
    from scanaot.tools import bench_report

    report = bench_report.load(json_path)
    print(f"\nmedian time (ratio to hand-written C) on {bench_report.machine(report)}:\n")
    print(bench_report.table(report))
    print(f"\nraw results: {json_path}")
    if plot:
        print(f"plot: {bench_report.plot(report, plot)}")


# ---------------------------------------------------------------- cache
def cache_info(args: argparse.Namespace) -> int:
    """Where the compile cache is, how many entries and bytes it holds, and its cap."""
    from scanaot import cache

    info = cache.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print(f"path:    {info['path']}\nentries: {info['entries']}\n"
          f"size:    {_mb(info['bytes'])} of {_mb(info['limit_bytes'])} (SCANAOT_CACHE_MAX_MB)")
    return EXIT_OK


def cache_clear(args: argparse.Namespace) -> int:
    """Empty the compile cache; later compiles rebuild what they need."""
    from scanaot import cache

    removed = cache.clear()
    print(f"removed {removed} entr{'y' if removed == 1 else 'ies'} from {cache.cache_dir()}")
    return EXIT_OK


def _mb(n: int) -> str:
    """Bytes as MB, the unit SCANAOT_CACHE_MAX_MB is given in."""
    return f"{n / 2**20:.1f} MB"


# ---------------------------------------------------------------- version
def versions() -> str:
    """scanaot's version, then the compiler extra's wheels (read from the package metadata,
    so that --version imports no MLIR)."""
    from importlib import metadata

    import scanaot

    lines = [f"scanaot {scanaot.__version__}"]
    try:
        requires = metadata.requires("scanaot") or []
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        requires = []
    wheels = [re.match(r"[A-Za-z0-9._-]+", r).group() for r in requires if 'extra == "compiler"' in r]
    found = []
    for wheel in wheels:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{wheel} {metadata.version(wheel)}")
    complete = bool(wheels) and len(found) == len(wheels)
    missing = f"compiler extra not installed ({INSTALL_COMPILER})"
    lines.append("toolchain: " + (", ".join(found) if complete else missing))
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    """--version, computed only when asked (it reads package metadata)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        print(versions())
        parser.exit()


# ---------------------------------------------------------------- signing
def keygen(args: argparse.Namespace) -> int:
    """A private key file (hex seed, 0600, never overwritten) and its public key beside it."""
    from scanaot.runtime import signing

    key = Path(args.keyfile)
    seed = signing.generate_seed()
    try:
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{key} exists; a key is never overwritten") from None
    except OSError as err:
        raise CliError(f"{key}: {err.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(seed.hex() + "\n")
    public = signing.public_key(seed).hex()
    Path(f"{key}.pub").write_text(public + "\n")
    print(f"private key: {key} (keep it secret)\npublic key:  {public} (also in {key}.pub)")
    return EXIT_OK


def sign(args: argparse.Namespace) -> int:
    """LIB.so.sig: the library's SHA-256 signed with the key (the library is checked first)."""
    from scanaot.runtime import LibraryError, manifest as manifest_mod, signing

    library, key = existing_file(args.library, "library"), existing_file(args.key, "key")
    data = library.read_bytes()
    try:
        manifest_mod.read(data, str(library))
        seed = bytes.fromhex(key.read_text().strip())
    except LibraryError as err:
        raise CliError(str(err)) from None
    except ValueError:
        raise UsageError(f"{key}: not a key file from scanaot keygen") from None
    if len(seed) != 32:
        raise UsageError(f"{key}: not a key file from scanaot keygen")
    record = signing.sign_library(data, seed)
    target = Path(f"{library}.sig")
    target.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{target} (key {record['public_key']})")
    return EXIT_OK


# ---------------------------------------------------------------- the parser and main
def build_parser() -> argparse.ArgumentParser:
    """The parser; each subcommand's `run` is the function that carries it out."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                        help="on an error, print the full traceback too (or set SCANAOT_TRACEBACK=1)")
    parser = argparse.ArgumentParser(prog="scanaot", description=__doc__, parents=[common],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_VersionAction,
                        help="print scanaot's version and the toolchain's, then exit")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_compile(sub, common)
    p = sub.add_parser("inspect", parents=[common], help="print a library's manifest")
    p.add_argument("library")
    p.add_argument("--json", action="store_true", help="the raw manifest")
    p.set_defaults(run=inspect_library)
    p = sub.add_parser("bench", parents=[common], help="run the benchmark suite and print the table")
    p.add_argument("--short", action="store_true",
                   help="tiny sizes, every implementation checked, nothing timed (a correctness run)")
    p.add_argument("--plot", metavar="PNG", help="draw the ratios to C into this PNG")
    p.add_argument("--json", metavar="PATH", help="where pytest-benchmark writes its JSON")
    p.add_argument("-k", metavar="EXPR", help="only the cases pytest's -k selects (e.g. W4)")
    p.set_defaults(run=bench)
    p = sub.add_parser("demo", parents=[common],
                       help="compile and run the scan guide's examples as .so artifacts")
    p.add_argument("-o", "--output", default="build/demo", help="where the artifacts go (build/demo)")
    p.add_argument("--ir", metavar="STAGE", help="also print the IR at STAGE (scan, scan-opt, scf, memref, llvm)")
    p.add_argument("--target", default="cpu", choices=("cpu", "cuda"),
                   help="cuda: compile for the GPU; runs only where a GPU is (cpu is the default)")
    p.set_defaults(run=demo)
    _add_cache(sub, common)
    _add_signing(sub, common)
    return parser


def _add_signing(sub: Any, common: argparse.ArgumentParser) -> None:
    """`keygen` and `sign` (docs/deploy.md, runtime/signing.py)."""
    p = sub.add_parser("keygen", parents=[common], help="a new Ed25519 key to sign libraries with")
    p.add_argument("keyfile", help="where the private key goes (KEYFILE.pub: the public key)")
    p.set_defaults(run=keygen)
    p = sub.add_parser("sign", parents=[common], help="sign a library: writes LIB.so.sig")
    p.add_argument("library")
    p.add_argument("--key", required=True, help="the private key file from scanaot keygen")
    p.set_defaults(run=sign)


def _add_cache(sub: Any, common: argparse.ArgumentParser) -> None:
    """`cache info` and `cache clear`: a second level of subcommands."""
    p = sub.add_parser("cache", parents=[common], help="the compile cache: info, clear")
    actions = p.add_subparsers(dest="action", required=True)
    q = actions.add_parser("info", parents=[common], help="where the cache is, its entries and size")
    q.add_argument("--json", action="store_true", help="as JSON (path, entries, bytes, limit_bytes)")
    q.set_defaults(run=cache_info)
    q = actions.add_parser("clear", parents=[common], help="remove every entry")
    q.set_defaults(run=cache_clear)


def _add_compile(sub: Any, common: argparse.ArgumentParser) -> None:
    """`compile`: --cpu takes portable (the default), native, a level or levels (docs/deploy.md)."""
    p = sub.add_parser("compile", parents=[common], help="compile a model file's EXPORTS to a .so and a .h")
    p.add_argument("model", help="MODEL.py or MODEL.py:NAME")
    p.add_argument("--target", default="cpu", choices=("cpu", "cuda"), help="cpu (default) or cuda")
    p.add_argument("--cpu", default=None, type=_cpu_option,
                   help="portable (default: x86-64-v2, v3 and v4 variants, the best one picked at load), "
                        "native, a level x86-64[-v2|-v3|-v4], or levels separated by commas")
    p.add_argument("--arch", default=None, help="GPU architecture for --target cuda (default: sm_90)")
    p.add_argument("--fastmath", default="none", choices=("none", "contract", "fast"),
                   help="floating-point freedoms (default none: exact, like numpy)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(run=compile_model)


def _cpu_option(text: str) -> str | list[str]:
    """--cpu x86-64-v3,x86-64-v4 -> a list of levels (one library with both variants);
    an unknown name is a usage error (exit 2), as argparse's own."""
    from scanaot.runtime.cpu import LEVELS
    names = text.split(",")
    known = {*LEVELS, "native", "portable"}
    unknown = [n for n in names if n not in known]
    if unknown or ("native" in names or "portable" in names) and len(names) > 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected portable, native, one of {', '.join(LEVELS)} "
                                         "or levels separated by commas")
    return names if len(names) > 1 else text


def main(argv: list[str] | None = None) -> int:
    """Run one command; every error becomes one line on stderr and an exit code (module docstring)."""
    args = build_parser().parse_args(argv)
    show_traceback = getattr(args, "traceback", False) or os.environ.get("SCANAOT_TRACEBACK") == "1"
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the CLI's one place that reports errors
        if show_traceback:
            traceback.print_exc()
        code, message = classify(err)
        print(f"scanaot {args.command}: {message}", file=sys.stderr)
        return code


def classify(err: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an error that ended a command."""
    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(err, CliError):
        return err.code, str(err)
    if isinstance(err, ModuleNotFoundError):
        hint = INSTALL_COMPILER if (err.name or "").split(".")[0] in COMPILER_MODULES else "install it"
        return EXIT_MISSING, f"no module {err.name!r}: {hint}"
    return EXIT_FAILURE, f"{type(err).__name__}: {_one_line(str(err))}"


def _one_line(text: str) -> str:
    """A multi-line message as one line: its first line and its last (a tool's stderr ends with
    the error itself); --traceback shows all of it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return f"{lines[0].rstrip(':')}: {lines[-1]}"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush raises no second BrokenPipeError."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
