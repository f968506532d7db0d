"""The `scanaot` command line.

    scanaot compile MODEL.py[:NAME] [--target cpu|cuda] [--cpu CPU] [--arch SM] [--fastmath MODE] -o DIR
        compile the functions MODEL.py exports into DIR/libMODEL.so and DIR/MODEL.h
    scanaot inspect LIB.so
        print a library's manifest: functions, arguments, output shapes, target
    scanaot bench [--short] [--plot PNG] [--json PATH] [-k EXPR]
        run the benchmark suite (tests/benchmarks/test_suite.py) and print the table
    scanaot demo [-o DIR] [--ir STAGE]
        compile every example of the scan guide to a .so, run it through the
        runtime, print what it prints and where the artifacts are

A model file is a Python file that traces its functions and lists them in a
module-level dict `EXPORTS = {"name": (inputs, outputs), ...}`.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import sys
import time
from pathlib import Path


def compile_model(args: argparse.Namespace) -> int:
    import scanaot

    path, _, only = args.model.partition(":")
    model = Path(path)
    if not model.is_file():
        raise SystemExit(f"scanaot compile: {model} is not a file")
    spec = importlib.util.spec_from_file_location(f"scanaot_model_{model.stem}", model)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exports = getattr(module, "EXPORTS", None)
    if not isinstance(exports, dict) or not exports:
        raise SystemExit(f"scanaot compile: {model} must define EXPORTS = {{name: (inputs, outputs)}}")
    if only:
        if only not in exports:
            raise SystemExit(f"scanaot compile: {model} exports no {only!r}; it has {', '.join(exports)}")
        exports = {only: exports[only]}
    library = only or model.stem.replace("-", "_")
    start = time.perf_counter()
    art = scanaot.compile_many([(n, i, o) for n, (i, o) in exports.items()], name=library,
                               target=args.target, out_dir=args.output, cpu=args.cpu, arch=args.arch,
                               fastmath=args.fastmath)
    print(f"{art.library}\n{art.header}\n({len(exports)} function(s), {time.perf_counter() - start:.2f} s)")
    return 0


def inspect_library(args: argparse.Namespace) -> int:
    from scanaot.runtime import LibraryError, manifest as manifest_mod

    try:
        m = manifest_mod.read(Path(args.library).read_bytes(), args.library)
    except (OSError, LibraryError) as err:
        raise SystemExit(f"scanaot inspect: {err}")
    if args.json:
        print(json.dumps(m, indent=2))
        return 0
    t = m["target"]
    print(f"{args.library}: scanaot ABI {m['abi_version']}, target {t['name']} ({t['triple']}, cpu {t['cpu']}, "
          f"fastmath {t.get('fastmath', 'none')})")
    if t["name"] == "cuda":
        code = t.get("device_code", {})
        print(f"device code: {code.get('format')} for {t['arch']}, {code.get('kernels')} kernel(s); "
              f"ptxas: {t.get('ptxas') or 'not found (PTX, compiled by the driver at load)'}")
    print(f"compiler: scanaot {m['compiler']['scanaot']}, toolchain {m['compiler']['toolchain']}")
    for f in m["functions"]:
        print(f"\n{f['name']}  (symbol {f['symbol']}, graph {f['graph_hash'][:16]}, "
              f"workspace {f['workspace_bytes']} bytes)")
        for a in f["args"]:
            host = "  (read by host code: device arrays are staged)" if a.get("host_access") else ""
            print(f"  arg    {a['name']}: {a['dtype']}[{a['ndim']}d]{host}")
        for o in f["outputs"]:
            dims = ", ".join(t + (" (bound)" if b else "") for t, b in zip(o["shape_text"], o["bounded"]))
            print(f"  output {o['name']}: {o['dtype']}[{dims}]")
        for c in f["constraints"]:
            op = "==" if c["rel"] == "eq" else ">="
            print(f"  check  {c['text'][0]} {op} {c['text'][1]}  ({c['why']})")
    return 0


def demo(args: argparse.Namespace) -> int:
    import scanaot
    import scanaot.runtime as rt
    from scanaot.compiled import record_functions
    from scanaot.tools.guide_examples import EXAMPLES

    out_dir = Path(args.output)
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
                    return 1
            print(f"   artifacts: {art.library}, {art.header} (compile {elapsed:.2f} s)")
            if args.ir:
                print(art.ir(args.ir))
    return 0


def _same(got, expected, target: str) -> bool:
    """Bitwise on the CPU; the GPU's math functions round differently in the last bits."""
    import numpy as np
    if target == "cpu" or expected.dtype.kind not in "fc":
        return bool((got == expected).all())
    return bool(np.allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True))


def bench(args: argparse.Namespace) -> int:
    import os
    import tempfile

    import pytest

    from scanaot.tools import bench_report

    suite = Path(__file__).resolve().parents[1] / "tests" / "benchmarks" / "test_suite.py"
    if not suite.exists():
        raise SystemExit("scanaot bench: the suite lives in the source tree (tests/benchmarks); run it "
                         "from a checkout installed with pip install -e '.[compiler,bench]'")
    if args.short:
        os.environ["SCANAOT_BENCH_SIZE"] = "short"
    json_path = Path(args.json or Path(tempfile.mkdtemp(prefix="scanaot-bench-")) / "bench.json")
    pytest_args = [str(suite), "-m", "benchmark", "-q", "-p", "no:cacheprovider",
                   f"--benchmark-json={json_path}", "--benchmark-columns=median,iqr,rounds"]
    if args.k:
        pytest_args += ["-k", args.k]
    code = pytest.main(pytest_args)
    if code not in (0, 5) or not json_path.exists():
        return int(code)
    report = bench_report.load(json_path)
    print(f"\nmedian time (ratio to hand-written C) on {bench_report.machine(report)}:\n")
    print(bench_report.table(report))
    print(f"\nraw results: {json_path}")
    if args.plot:
        print(f"plot: {bench_report.plot(report, args.plot)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scanaot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compile", help="compile a model file's EXPORTS to a .so and a .h")
    p.add_argument("model", help="MODEL.py or MODEL.py:NAME")
    p.add_argument("--target", default="cpu", choices=("cpu", "cuda"), help="cpu (default) or cuda")
    p.add_argument("--cpu", default=None, help="LLVM CPU name for the host code (default: native)")
    p.add_argument("--arch", default=None, help="GPU architecture for --target cuda (default: sm_90)")
    p.add_argument("--fastmath", default="none", choices=("none", "contract", "fast"),
                   help="floating-point freedoms (default none: exact, like numpy)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(run=compile_model)
    p = sub.add_parser("inspect", help="print a library's manifest")
    p.add_argument("library")
    p.add_argument("--json", action="store_true", help="the raw manifest")
    p.set_defaults(run=inspect_library)
    p = sub.add_parser("bench", help="run the benchmark suite and print the table")
    p.add_argument("--short", action="store_true", help="tiny sizes (a correctness run)")
    p.add_argument("--plot", metavar="PNG", help="draw the ratios to C into this PNG")
    p.add_argument("--json", metavar="PATH", help="where pytest-benchmark writes its JSON")
    p.add_argument("-k", metavar="EXPR", help="only the cases pytest's -k selects (e.g. W4)")
    p.set_defaults(run=bench)
    p = sub.add_parser("demo", help="compile and run the scan guide's examples as .so artifacts")
    p.add_argument("-o", "--output", default="build/demo", help="where the artifacts go (build/demo)")
    p.add_argument("--ir", metavar="STAGE", help="also print the IR at STAGE (scan, scan-opt, scf, memref, llvm)")
    p.add_argument("--target", default="cpu", choices=("cpu", "cuda"),
                   help="cuda: compile for the GPU; runs only where a GPU is (cpu is the default)")
    p.set_defaults(run=demo)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
