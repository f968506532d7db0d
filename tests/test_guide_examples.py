"""Every example of the scan guide prints what the guide prints."""
import re

import numpy as np
import pytest

from scanaot.tools import guide_examples

# The guide's printed output for each example (numbers only are compared: numpy's
# spacing has changed since the guide was written).
GUIDE_OUTPUT = {
    "power": """[ 0. 1. 4. 9. 16. 25. 36. 49. 64. 81.]
[ 0.00000000e+00 1.00000000e+00 1.60000000e+01 8.10000000e+01
2.56000000e+02 6.25000000e+02 1.29600000e+03 2.40100000e+03
4.09600000e+03 6.56100000e+03]""",
    "polynomial": "19.0\n19.0",
    "triangular": """[ 0 1 3 6 10 15 21 28 36 45 55 66 78 91 105]
[0, 1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 66, 78, 91, 105]""",
    "set_value_at_position": """[[[ 0. 0. 0. 0. 0.]
[ 0. 42. 0. 0. 0.]
[ 0. 0. 0. 0. 0.]
[ 0. 0. 0. 0. 0.]
[ 0. 0. 0. 0. 0.]]
[[ 0. 0. 0. 0. 0.]
[ 0. 0. 0. 0. 0.]
[ 0. 0. 0. 50. 0.]
[ 0. 0. 0. 0. 0.]
[ 0. 0. 0. 0. 0.]]]""",
    "power_of_2": "[ 2. 4. 8. 16. 32. 64.]",
    # the guide builds the RNN graph without running it; the example runs it on 9 steps
    "rnn": "(5, 3) (5, 2)",
}

NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:e[+-]?\d+)?")


def numbers(text):
    return [float(x) for x in NUMBER.findall(text)]


@pytest.mark.parametrize("name", sorted(guide_examples.EXAMPLES))
def test_guide_example_prints_guide_output(name):
    printed = guide_examples.run(name)
    assert numbers(printed) == numbers(GUIDE_OUTPUT[name]), printed


def test_rnn_matches_numpy_reference():
    import scanaot as aesara
    import scanaot.tensor as at

    def one_step(u_tm4, u_t, x_tm3, x_tm1, y_tm1, W, W_in_1, W_in_2, W_feedback, W_out):
        x_t = at.tanh(aesara.dot(x_tm1, W) + aesara.dot(u_t, W_in_1) + aesara.dot(u_tm4, W_in_2)
                      + aesara.dot(y_tm1, W_feedback))
        return [x_t, aesara.dot(x_tm3, W_out)]

    mats = [at.dmatrix() for _ in range(5)]
    u, x0, y0 = at.dmatrix("u"), at.dmatrix("x0"), at.dvector("y0")
    (xs, ys), _ = aesara.scan(one_step, sequences=dict(input=u, taps=[-4, 0]),
                              outputs_info=[dict(initial=x0, taps=[-3, -1]), y0],
                              non_sequences=mats, strict=True)
    f = aesara.function([u, x0, y0, *mats], [xs, ys])
    rng = np.random.default_rng(0)
    n_in, n_hid, n_out, T = 2, 4, 3, 12
    uv = rng.standard_normal((T, n_in))
    x0v, y0v = rng.standard_normal((3, n_hid)), rng.standard_normal(n_out)
    W, Wi1, Wi2, Wf, Wo = [rng.standard_normal(s) * 0.4 for s in
                           [(n_hid, n_hid), (n_in, n_hid), (n_in, n_hid), (n_out, n_hid), (n_hid, n_out)]]
    got_x, got_y = f(uv, x0v, y0v, W, Wi1, Wi2, Wf, Wo)
    x_hist, y = list(x0v), y0v
    ref_x, ref_y = [], []
    for t in range(4, T):
        x_t = np.tanh(x_hist[-1] @ W + uv[t] @ Wi1 + uv[t - 4] @ Wi2 + y @ Wf)
        y = x_hist[-3] @ Wo
        x_hist.append(x_t)
        ref_x.append(x_t)
        ref_y.append(y)
    np.testing.assert_allclose(got_x, np.array(ref_x), rtol=1e-10)
    np.testing.assert_allclose(got_y, np.array(ref_y), rtol=1e-10)
