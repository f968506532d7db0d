"""The tensor ops, one module per family. Each module holds, for each of its ops, the
class with its typing (`make_node`) and shape rule (`infer_shape`), its MLIR emission
and its VJP, registered in `graph.rules`, and the user functions that build it.

    elemwise    scalar functions over broadcast tensors (one table row each), cast
    creation    fill, alloc, zeros/ones/full, arange, linspace, eye, tril/triu, diag
    indexing    x[...], x[idx], take, set_subtensor, inc_subtensor
    shape       dimshuffle/transpose, reshape/flatten, squeeze, shape_i, shape
    reduction   sum, prod, max, min, mean, all/any, argmax, var/std, cumsum, sort
    join        concatenate/join, stack, split, repeat, tile, roll
    nnet        softplus, relu, softmax, log_softmax, logsumexp, crossentropies
    linalg      dot, tensordot, outer, batched_dot, matmul
    nlinalg     matrix_inverse, det, solve, cholesky (small matrices)

Importing this package registers every rule and Variable's operators (methods.py).
The scan op, the loop itself, lives in `scanaot.scan` with the same three rules.
"""
from . import creation, elemwise, indexing, join, linalg, methods, nlinalg, nnet, random, reduction, shape  # noqa: F401
