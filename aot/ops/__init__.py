"""The tensor ops, one module per family. Each module holds, for each of its ops, the
class with its typing (`make_node`) and shape rule (`infer_shape`), its MLIR emission
and its VJP, registered in `graph.rules`, and the user functions that build it.

    elemwise    scalar functions over broadcast tensors (one table row each), cast
    creation    fill, alloc, zeros/ones, arange
    indexing    x[...], set_subtensor, inc_subtensor
    shape       dimshuffle/transpose, shape_i, shape, stack of scalars
    reduction   sum, prod, max, min, mean
    linalg      dot

Importing this package registers every rule and Variable's operators (methods.py).
The scan op, the loop itself, lives in `scanaot.scan` with the same three rules.
"""
from . import creation, elemwise, indexing, linalg, methods, nlinalg, nnet, reduction, shape  # noqa: F401
from . import join  # noqa: F401  (after reduction: joining, split, repeat, tile, roll)
