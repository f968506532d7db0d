"""Type constructors (`at.vector`, `at.dmatrix`, `at.row`, `at.tensor`, plurals such as
`at.dmatrices`), as in `aesara.tensor.type`, and `TensorType(dtype, shape=...)`."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from .. import config
from ..graph.basic import TensorType as _GraphTensorType
from ..graph.basic import Variable

# kind -> broadcastable pattern (Aesara's scalar ... tensor7, row, col)
KINDS: dict[str, tuple[bool, ...]] = {
    "scalar": (), "vector": (False,), "matrix": (False, False), "row": (True, False),
    "col": (False, True), **{f"tensor{n}": (False,) * n for n in range(3, 8)}}
PREFIXES: dict[str, str | None] = {"": None, "b": "int8", "w": "int16", "i": "int32", "l": "int64",
                                   "f": "float32", "d": "float64"}
PLURAL_PREFIXES = ("", "f", "d", "i", "l")  # Aesara has no bvectors, wvectors, ...


def plural(kind: str) -> str:
    """Aesara's plural spelling: matrices, not matrixs."""
    return "matrices" if kind == "matrix" else kind + "s"


def broadcastable_of(shape: Sequence[Any], where: str) -> tuple[bool, ...]:
    """Aesara's static shape (None or an int per dim; a 1 broadcasts) as a
    broadcastable pattern. Bools are the older broadcastable spelling (True is 1)."""
    try:
        dims = list(shape)
    except TypeError:
        raise TypeError(f"{where}: shape must be a sequence of None or ints, got {shape!r}") from None
    pattern = []
    for i, dim in enumerate(dims):
        if isinstance(dim, bool) or dim is None:
            pattern.append(bool(dim))
        elif isinstance(dim, int) and dim >= 0:
            pattern.append(dim == 1)
        else:
            raise TypeError(f"{where}: shape[{i}] must be None or a non-negative int, got {dim!r}")
    return tuple(pattern)


class _TensorTypeMeta(type):
    """`isinstance(x.type, at.TensorType)` holds for every tensor type the ops build."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, _GraphTensorType)


class TensorType(_GraphTensorType, metaclass=_TensorTypeMeta):
    """Aesara 2.9's `TensorType(dtype, shape=None, broadcastable=None)`; calling it
    with a name makes a variable: `at.TensorType("float64", shape=(None, 1))("x")`."""

    __slots__ = ()

    def __init__(self, dtype: str, shape: Sequence[Any] | None = None, name: str | None = None,
                 broadcastable: Sequence[bool] | None = None):
        if shape is None and broadcastable is None:
            raise TypeError("TensorType: give shape= (None or an int per dim) or broadcastable=")
        pattern = broadcastable_of(shape, "TensorType") if shape is not None else broadcastable
        super().__init__(config.floatX if dtype == "floatX" else dtype, pattern)


def _make(dtype: str | None, pattern: tuple[bool, ...], kind: str) -> Callable[..., Variable]:
    def constructor(name: str | None = None, dtype: str | None = dtype, shape=None) -> Variable:
        bcast = pattern
        if shape is not None:
            if len(shape) != len(pattern):
                raise ValueError(f"{kind}: shape {tuple(shape)} has {len(shape)} dims, expected {len(pattern)}")
            bcast = broadcastable_of(shape, kind)
        return Variable(_GraphTensorType(dtype or config.floatX, bcast), name=name)
    constructor.__name__ = constructor.__qualname__ = kind
    constructor.__doc__ = f"A symbolic {kind} ({dtype or 'config.floatX'}), as Aesara's `{kind}`."
    return constructor


def _many(single: Callable[..., Variable], name: str) -> Callable[..., Any]:
    def constructor(*names: Any) -> Any:
        """As Aesara's plural constructors: `dvectors("a", "b")` gives a list, a single
        name one variable, an int that many unnamed variables."""
        if len(names) == 1 and isinstance(names[0], int) and not isinstance(names[0], bool):
            return [single() for _ in range(names[0])]
        if len(names) == 1 and isinstance(names[0], (list, tuple)):
            names = tuple(names[0])
        elif len(names) == 1:
            return single(names[0])
        return [single(n) for n in names]
    constructor.__name__ = constructor.__qualname__ = name
    return constructor


def constructors() -> dict[str, Callable[..., Any]]:
    """Every Aesara constructor name scanaot supports, singular and plural."""
    found: dict[str, Callable[..., Any]] = {}
    for kind, pattern in KINDS.items():
        for prefix, dtype in PREFIXES.items():
            single = _make(dtype, pattern, prefix + kind)
            found[prefix + kind] = single
            if prefix in PLURAL_PREFIXES:
                found[prefix + plural(kind)] = _many(single, prefix + plural(kind))
    return found


def tensor(dtype: str | None = None, shape: Sequence[int | None] | None = None,
           name: str | None = None, broadcastable: Sequence[bool] | None = None) -> Variable:
    """A symbolic tensor of any rank (`shape` entries of 1 are broadcastable)."""
    if broadcastable is None:
        if shape is None:
            raise TypeError("tensor() needs shape= or broadcastable=")
        broadcastable = broadcastable_of(shape, "tensor")
    return Variable(_GraphTensorType(dtype or config.floatX, broadcastable), name=name)
