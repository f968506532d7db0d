"""Kernels on Ray: the library travels through the object store once and runs in
workers that import only the runtime (docs/scale-out.md)."""
import numpy as np
import pytest

import scanaot
import scanaot.runtime as rt
import scanaot.tensor as at

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_kernels_run_in_ray_workers_without_the_compiler(local_ray, tmp_path):
    x, w = at.fmatrix("x"), at.fvector("w")
    lib = rt.load(scanaot.compile([x, w], (x * w).sum(axis=1), name="rowdot", out_dir=tmp_path).library)

    @ray.remote
    def run(kernel, rows, weights):
        import sys
        return kernel(rows, weights), "mlir" in sys.modules

    kernel = ray.put(lib.rowdot)
    data = np.arange(24, dtype="float32").reshape(6, 4)
    weights = np.array([1, 2, 3, 4], "float32")
    results = ray.get([run.remote(kernel, data[i:i + 2].copy(), weights) for i in (0, 2, 4)])
    np.testing.assert_array_equal(np.concatenate([r for r, _ in results]), data @ weights)
    assert not any(compiler for _, compiler in results)
