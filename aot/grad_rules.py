"""VJP rules of the tensor ops (scan's rule is in grad_scan.py)."""
from __future__ import annotations

from . import basic as b
from . import ops
from .autodiff import unbroadcast, vjp_rule

# elementwise: name -> function(inputs, output, g) -> cotangent per input (before unbroadcast)
_ELEMWISE = {
    "add": lambda x, z, g: [g, g],
    "sub": lambda x, z, g: [g, -g],
    "mul": lambda x, z, g: [g * x[1], g * x[0]],
    "true_div": lambda x, z, g: [g / x[1], -g * x[0] / (x[1] * x[1])],
    "neg": lambda x, z, g: [-g],
    "pow": lambda x, z, g: [g * x[1] * x[0] ** (x[1] - 1), g * b.log(x[0]) * z],
    "maximum": lambda x, z, g: [g * b.ge(x[0], x[1]), g * b.lt(x[0], x[1])],
    "minimum": lambda x, z, g: [g * b.le(x[0], x[1]), g * b.gt(x[0], x[1])],
    "abs": lambda x, z, g: [g * b.sgn(x[0])],
    "tanh": lambda x, z, g: [g * (1 - z * z)],
    "exp": lambda x, z, g: [g * z],
    "log": lambda x, z, g: [g / x[0]],
    "sqrt": lambda x, z, g: [g / (2 * z)],
    "sin": lambda x, z, g: [g * b.cos(x[0])],
    "cos": lambda x, z, g: [-g * b.sin(x[0])],
    "sigmoid": lambda x, z, g: [g * z * (1 - z)],
    "switch": lambda x, z, g: [None, b.switch(x[0], g, 0), b.switch(x[0], 0, g)],
    "mod": lambda x, z, g: [g, -g * b.floor(x[0] / x[1])],
}
# piecewise constant: no gradient flows through them
_ZERO = {"lt", "gt", "le", "ge", "eq", "neq", "and", "or", "xor", "invert", "int_div", "ceil", "floor",
         "sign"}


@vjp_rule(ops.Elemwise)
def _elemwise(node, cots, needed):
    g = cots[0]
    name = node.op.scalar
    if name in _ZERO or g is None:
        return [None] * len(node.inputs)
    grads = _ELEMWISE[name](node.inputs, node.outputs[0], g)
    return [None if gi is None else unbroadcast(gi, x) for gi, x in zip(grads, node.inputs)]


@vjp_rule(ops.Cast)
def _cast(node, cots, needed):
    return [b.cast(cots[0], node.inputs[0].dtype) if node.inputs[0].dtype.startswith("float") else None]


@vjp_rule(ops.Alloc)
def _alloc(node, cots, needed):
    g = cots[0]
    return [b.sum(g, dtype=g.dtype) if g.ndim else g] + [None] * (len(node.inputs) - 1)


def _no_gradient(node, cots, needed):
    """Ops whose result does not depend differentiably on any input: shapes, ranges, fills."""
    return [None] * len(node.inputs)


for _op in (ops.Fill, ops.ARange, ops.ShapeI):
    vjp_rule(_op)(_no_gradient)
del _op


@vjp_rule(ops.MakeVector)
def _make_vector(node, cots, needed):
    g = cots[0]
    return [g[i] for i in range(len(node.inputs))]


def _expand(g, x, axes):
    """A reduction's cotangent with the reduced axes put back as broadcastable dims."""
    order, k = [], 0
    for a in range(x.ndim):
        if a in axes:
            order.append("x")
        else:
            order.append(k)
            k += 1
    return b.dimshuffle(g, *order) if order != list(range(g.ndim)) else g


@vjp_rule(ops.Reduce)
def _reduce(node, cots, needed):
    x, z = node.inputs[0], node.outputs[0]
    g = _expand(cots[0], x, node.op.axes)
    if node.op.kind == "sum":
        return [g * b.ones_like(x)]
    z_full = _expand(z, x, node.op.axes)
    if node.op.kind == "prod":
        return [g * z_full / x]
    return [g * b.eq(x, z_full)]


@vjp_rule(ops.Dot)
def _dot(node, cots, needed):
    x, y = node.inputs
    g = cots[0]
    if (x.ndim, y.ndim) == (2, 2):
        return [b.dot(g, y.T), b.dot(x.T, g)]
    if (x.ndim, y.ndim) == (2, 1):
        return [b.dimshuffle(g, 0, "x") * b.dimshuffle(y, "x", 0), b.dot(x.T, g)]
    if (x.ndim, y.ndim) == (1, 2):
        return [b.dot(y, g), b.dimshuffle(x, 0, "x") * b.dimshuffle(g, "x", 0)]
    return [g * y, g * x]


@vjp_rule(ops.DimShuffle)
def _dimshuffle(node, cots, needed):
    x, g = node.inputs[0], cots[0]
    order = node.op.order
    added = tuple(i for i, o in enumerate(order) if o == "x")
    if added:
        g = b.sum(g, axis=added, dtype=g.dtype)
    kept = [o for o in order if o != "x"]
    back = []
    for axis in range(x.ndim):
        back.append(kept.index(axis) if axis in kept else "x")
    return [b.dimshuffle(g, *back) if back != list(range(g.ndim)) else g]


@vjp_rule(ops.Subtensor)
def _subtensor(node, cots, needed):
    x, scalars = node.inputs[0], node.inputs[1:]
    gx = ops.IncSubtensor(node.op.spec, False)(b.zeros_like(x), cots[0], *scalars)
    return [gx] + [None] * len(scalars)


@vjp_rule(ops.IncSubtensor)
def _inc_subtensor(node, cots, needed):
    _x, y, scalars = node.inputs[0], node.inputs[1], node.inputs[2:]
    g = cots[0]
    region = ops.Subtensor(node.op.spec)(g, *scalars)
    gx = ops.IncSubtensor(node.op.spec, True)(g, b.zeros_like(region), *scalars) if node.op.set else g
    return [gx, unbroadcast(region, y)] + [None] * len(scalars)
