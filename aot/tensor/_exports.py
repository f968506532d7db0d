"""What `scanaot.tensor` and its Aesara-named submodules answer for a name they do
not have: an AttributeError that says scanaot does not support it and where the
supported names are listed, instead of Python's bare "has no attribute"."""
from __future__ import annotations

import sys
import types
from typing import Any, Callable

DOCS = "docs/tensor.md"


def unsupported(module: str, name: str) -> AttributeError:
    """The error for an Aesara name scanaot lacks."""
    return AttributeError(
        f"module {module!r} has no attribute {name!r}: {name!r} is not supported by scanaot "
        f"(the supported names are listed in {DOCS}; Variable methods in its 'Operations' table)")


def module_getattr(module: str, package: Callable[[], dict[str, Any]] | None = None) -> Callable[[str], Any]:
    """A module `__getattr__`: a name Aesara keeps in another `aesara.tensor` submodule
    than scanaot does is still found (`package()` is scanaot.tensor's namespace);
    anything else is `unsupported`."""
    def __getattr__(name: str) -> Any:  # noqa: N807 - the module protocol's name
        if name.startswith("__"):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if package is not None:
            namespace = package()
            if name in namespace:
                return namespace[name]
        raise unsupported(module, name)
    return __getattr__


def package_namespace() -> dict[str, Any]:
    """scanaot.tensor's names, looked up when asked (the package imports its submodules)."""
    import scanaot.tensor as package
    return vars(package)


def make_callable(module: str, function: Callable[..., Any]) -> None:
    """Let a submodule that shares its name with a function of `scanaot.tensor`
    (`shape`, `var`) also be called as that function: once `scanaot.tensor.var` is
    imported, `at.var` may be the module, and `at.var(x)` must still work."""
    class CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

    sys.modules[module].__class__ = CallableModule
