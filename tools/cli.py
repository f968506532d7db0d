"""The `scanaot` command line.

    scanaot demo [--ir STAGE]   compile every example of the scan guide to a .so, run it,
                                print what it prints and where its library is
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time


def demo(args: argparse.Namespace) -> int:
    from scanaot.compiled import record_functions
    from scanaot.tools.guide_examples import EXAMPLES

    for name, example in EXAMPLES.items():
        print(f"== {name}")
        start = time.perf_counter()
        out = io.StringIO()
        with record_functions() as made, contextlib.redirect_stdout(out):
            example()
        elapsed = time.perf_counter() - start
        print(out.getvalue().rstrip())
        for f in made:
            print(f"   library: {f.library_path}  (compiled and run in {elapsed:.2f} s)")
            if args.ir:
                print(f.ir(args.ir))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scanaot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="compile and run the scan guide's examples")
    p_demo.add_argument("--ir", metavar="STAGE", help="also print the IR at STAGE "
                        "(scan, scan-opt, scf, memref, llvm)")
    p_demo.set_defaults(run=demo)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
