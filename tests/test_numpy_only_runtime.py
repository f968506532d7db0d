"""Artifacts of every guide example, loaded in a separate process whose environment has
only numpy and scanaot installed without its compiler extra, give the in-process results."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import scanaot
from scanaot.packaging.function import record_functions
from scanaot.tools import guide_examples

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

CHECK = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    assert importlib.util.find_spec("mlir") is None, "MLIR is installed in the numpy-only venv"
    import scanaot.runtime as rt
    assert "mlir" not in sys.modules
    cases = json.load(open(sys.argv[1]))
    for case in cases:
        lib = rt.load(case["library"])
        data = np.load(case["data"])
        args = [data[f"arg{i}"] for i in range(case["n_args"])]
        got = lib[case["function"]](*args)
        got = list(got) if isinstance(got, tuple) else [got]
        for j, g in enumerate(got):
            np.testing.assert_array_equal(g, data[f"out{j}"])
    print(f"{len(cases)} artifacts ok")
""")


@pytest.fixture(scope="module")
def numpy_only_python(tmp_path_factory):
    venv = tmp_path_factory.mktemp("venv") / "rt"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    return python


def test_guide_artifacts_in_a_numpy_only_environment(numpy_only_python, tmp_path):
    cases = []
    for name, example in guide_examples.EXAMPLES.items():
        with record_functions() as made:
            guide_examples.run(name)
        for k, f in enumerate(made):
            art = scanaot.compile(f.spec.inputs, f.spec.outputs, name=f"{name}_{k}", out_dir=tmp_path)
            for c, (arrays, results) in enumerate(f.calls):
                data = tmp_path / f"{name}_{k}_{c}.npz"
                np.savez(data, **{f"arg{i}": a for i, a in enumerate(arrays)},
                         **{f"out{j}": r for j, r in enumerate(results)})
                cases.append({"library": str(art.library), "function": f"{name}_{k}", "data": str(data),
                              "n_args": len(arrays)})
    assert len(cases) >= 7
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    proc = subprocess.run([str(numpy_only_python), "-c", CHECK, str(spec)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(cases)} artifacts ok" in proc.stdout
