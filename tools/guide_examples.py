"""The scan guide's examples, verbatim except for the two import lines.

Each function runs one example and returns what it printed, so the demo can show
it and the tests can compare it with the guide.
"""
from __future__ import annotations

import contextlib
import io
from typing import Callable


def power() -> None:
    import scanaot as aesara
    import scanaot.tensor as at
    k = at.iscalar("k")
    A = at.vector("A")
    result, updates = aesara.scan(fn=lambda prior_result, A: prior_result * A,
                                  outputs_info=at.ones_like(A),
                                  non_sequences=A,
                                  n_steps=k)
    final_result = result[-1]
    power = aesara.function(inputs=[A, k], outputs=final_result, updates=updates)
    print(power(range(10), 2))
    print(power(range(10), 4))


def polynomial() -> None:
    import numpy
    import scanaot as aesara
    import scanaot.tensor as at
    coefficients = aesara.tensor.vector("coefficients")
    x = at.scalar("x")
    max_coefficients_supported = 10000
    components, updates = aesara.scan(
        fn=lambda coefficient, power, free_variable: coefficient * (free_variable ** power),
        outputs_info=None,
        sequences=[coefficients, aesara.tensor.arange(max_coefficients_supported)],
        non_sequences=x)
    polynomial = components.sum()
    calculate_polynomial = aesara.function(inputs=[coefficients, x], outputs=polynomial)
    test_coefficients = numpy.asarray([1, 0, 2], dtype=numpy.float32)
    test_value = 3
    print(calculate_polynomial(test_coefficients, test_value))
    print(1.0 * (3 ** 0) + 0.0 * (3 ** 1) + 2.0 * (3 ** 2))


def triangular() -> None:
    import numpy as np
    import scanaot as aesara
    import scanaot.tensor as at
    up_to = at.iscalar("up_to")

    def accumulate_by_adding(arange_val, sum_to_date):
        return sum_to_date + arange_val
    seq = at.arange(up_to)
    outputs_info = at.as_tensor_variable(np.asarray(0, seq.dtype))
    scan_result, scan_updates = aesara.scan(fn=accumulate_by_adding,
                                            outputs_info=outputs_info,
                                            sequences=seq)
    triangular_sequence = aesara.function(inputs=[up_to], outputs=scan_result)
    some_num = 15
    print(triangular_sequence(some_num))
    print([n * (n + 1) // 2 for n in range(some_num)])


def set_value_at_position() -> None:
    import numpy
    import scanaot as aesara
    import scanaot.tensor as at
    location = at.imatrix("location")
    values = at.vector("values")
    output_model = at.matrix("output_model")

    def set_value_at_position(a_location, a_value, output_model):
        zeros = at.zeros_like(output_model)
        zeros_subtensor = zeros[a_location[0], a_location[1]]
        return at.set_subtensor(zeros_subtensor, a_value)
    result, updates = aesara.scan(fn=set_value_at_position,
                                  outputs_info=None,
                                  sequences=[location, values],
                                  non_sequences=output_model)
    assign_values_at_positions = aesara.function(inputs=[location, values, output_model],
                                                 outputs=result)
    test_locations = numpy.asarray([[1, 1], [2, 3]], dtype=numpy.int32)
    test_values = numpy.asarray([42, 50], dtype=numpy.float32)
    test_output_model = numpy.zeros((5, 5), dtype=numpy.float32)
    print(assign_values_at_positions(test_locations, test_values, test_output_model))


def rnn() -> None:
    import numpy as np
    import scanaot as aesara
    import scanaot.tensor as at

    def oneStep(u_tm4, u_t, x_tm3, x_tm1, y_tm1, W, W_in_1, W_in_2, W_feedback, W_out):  # noqa: N802
        x_t = at.tanh(aesara.dot(x_tm1, W) +
                      aesara.dot(u_t, W_in_1) +
                      aesara.dot(u_tm4, W_in_2) +
                      aesara.dot(y_tm1, W_feedback))
        y_t = aesara.dot(x_tm3, W_out)
        return [x_t, y_t]
    W = at.matrix()
    W_in_1 = at.matrix()
    W_in_2 = at.matrix()
    W_feedback = at.matrix()
    W_out = at.matrix()
    u = at.matrix()
    x0 = at.matrix()
    y0 = at.vector()
    ([x_vals, y_vals], updates) = aesara.scan(fn=oneStep,
                                              sequences=dict(input=u, taps=[-4, -0]),
                                              outputs_info=[dict(initial=x0, taps=[-3, -1]), y0],
                                              non_sequences=[W, W_in_1, W_in_2, W_feedback, W_out],
                                              strict=True)
    # The guide stops at the symbolic graph; run it on small values to show it works.
    f = aesara.function([u, x0, y0, W, W_in_1, W_in_2, W_feedback, W_out], [x_vals, y_vals])
    rng = np.random.default_rng(0)
    n_in, n_hid, n_out = 2, 3, 2
    args = [np.arange(9 * n_in, dtype="float32").reshape(9, n_in) / 10,
            np.zeros((3, n_hid), "float32"), np.zeros(n_out, "float32")]
    args += [rng.standard_normal(s).astype("float32") * 0.5
             for s in [(n_hid, n_hid), (n_in, n_hid), (n_in, n_hid), (n_out, n_hid), (n_hid, n_out)]]
    xs, ys = f(*args)
    print(xs.shape, ys.shape)


def power_of_2() -> None:
    import scanaot as aesara
    import scanaot.tensor as at

    def power_of_2(previous_power, max_value):
        return previous_power * 2, aesara.scan.utils.until(previous_power * 2 > max_value)
    max_value = at.scalar()
    values, _ = aesara.scan(power_of_2,
                            outputs_info=at.constant(1.),
                            non_sequences=max_value,
                            n_steps=1024)
    f = aesara.function([max_value], values)
    print(f(45))


EXAMPLES: dict[str, Callable[[], None]] = {
    "power": power, "polynomial": polynomial, "triangular": triangular,
    "set_value_at_position": set_value_at_position, "rnn": rnn, "power_of_2": power_of_2,
}


def run(name: str) -> str:
    """Run one example; return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        EXAMPLES[name]()
    return out.getvalue()
