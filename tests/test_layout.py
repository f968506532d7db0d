"""The package's layout holds: no import circles, and each room imports only the rooms
below it (docs/architecture.md lists them). Every import statement counts, also one
inside a function: a lazy import still ties the two modules together."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import scanaot
import scanaot.ops
import scanaot.scan
from scanaot.graph import rules
from scanaot.graph.basic import Op

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"scanaot": ROOT / "aot", "scanaot.runtime": ROOT / "runtime",
            "scanaot.dialects": ROOT / "dialects", "scanaot.tools": ROOT / "tools"}

# room -> the rooms it may import (a room is the first name under scanaot)
ALLOWED = {
    "runtime": set(),
    "dialects": set(),
    "config": set(),
    "graph": {"config"},
    "emit": {"graph", "runtime", "config"},
    "ops": {"graph", "emit", "runtime", "config"},
    "autodiff": {"graph", "ops", "emit", "runtime", "config"},
    "scan": {"graph", "ops", "autodiff", "emit", "dialects", "runtime", "config"},
    "gradient": {"graph", "ops", "autodiff", "scan", "emit", "runtime", "config"},
    "passes": {"dialects", "runtime", "emit"},
    "cache": {"runtime"},
    "targets": {"passes", "dialects", "emit", "runtime", "cache"},
    "packaging": {"graph", "ops", "scan", "autodiff", "gradient", "emit", "passes", "targets", "cache", "dialects",
                  "runtime", "config"},
    "tensor": {"graph", "ops", "emit", "runtime", "config"},
    "dask": {"runtime"},
    "printing": {"graph", "config"},  # debugprint reads the graph only
    "tools": None,  # the command line may use every room
    "__main__": {"tools"},
    "": set(),  # scanaot/__init__.py: names load lazily
}
# only what passes may use from emission: the shared IR builders
NARROW = {("passes", "emit"): {"scanaot.emit.builders"}, ("targets", "emit"): {"scanaot.emit.builders"}}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _imports(name: str, path: Path) -> set[str]:
    """Every scanaot module this module's import statements load."""
    package = name if _is_package(name) else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets.add(source)
            targets.update(f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in MODULES)
    loaded = set()
    for target in targets:
        if not target.startswith("scanaot"):
            continue
        parts = target.split(".")
        for i in range(2, len(parts) + 1):  # the packages on the way are imported too
            candidate = ".".join(parts[:i])
            if candidate in MODULES and not name.startswith(candidate + ".") and candidate != name:
                loaded.add(candidate)
    return loaded


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_module_walk_sees_the_package():
    assert {"scanaot.ops.elemwise", "scanaot.scan.grad", "scanaot.runtime.kernel",
            "scanaot.targets.cpu", "scanaot.dialects.scan"} <= set(MODULES)
    assert "scanaot.ops.elemwise" in GRAPH["scanaot.ops.reduction"]
    assert "scanaot.graph.rules" in GRAPH["scanaot.ops.elemwise"]


def test_no_import_circles():
    """Tarjan's strongly connected components: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not circles, f"import circles: {circles}"


def test_each_room_imports_only_rooms_below_it():
    wrong = []
    for module, imported in GRAPH.items():
        room = _room(module)
        allowed = ALLOWED[room]
        for target in imported:
            other = _room(target)
            if other == room or allowed is None:
                continue
            if other not in allowed:
                wrong.append(f"{module} -> {target}")
            elif (room, other) in NARROW and target not in NARROW[room, other] | {"scanaot." + other}:
                wrong.append(f"{module} -> {target} (only {sorted(NARROW[room, other])})")
    assert not wrong, "imports across rooms the layout forbids:\n" + "\n".join(sorted(wrong))


def test_the_runtime_and_the_dialect_import_no_compiler_parts():
    third_party = {"runtime": {"numpy"}, "dialects": {"mlir"}}
    for module, path in MODULES.items():
        room = _room(module)
        if room not in third_party:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for n in names:
                top = n.split(".")[0]
                if top in ("scanaot", "mlir", "jax", "dask") and top not in third_party[room]:
                    raise AssertionError(f"{module} imports {n}")


def _op_classes() -> list[type]:
    found = []
    for module in [*vars(scanaot.ops).values(), scanaot.scan.op]:
        if inspect.ismodule(module):
            found += [c for c in vars(module).values()
                      if inspect.isclass(c) and issubclass(c, Op) and c is not Op and c.__module__ == module.__name__]
    return found


# ops that deliberately have no VJP yet, and why
NO_VJP: dict[str, str] = {}  # op name -> why it has no VJP rule


@pytest.mark.parametrize("op_class", _op_classes(), ids=lambda c: c.__name__)
def test_every_op_registers_its_rules_in_its_own_module(op_class):
    assert op_class in rules.EMISSION, f"{op_class.__name__} has no emission rule"
    assert inspect.getmodule(rules.EMISSION[op_class]).__name__.rpartition(".")[0] == \
        op_class.__module__.rpartition(".")[0]
    if op_class.__name__ in NO_VJP:
        assert op_class not in rules.VJP
        return
    assert op_class in rules.VJP, f"{op_class.__name__} has no VJP rule"
    rule = rules.VJP[op_class]
    if rule is not rules.no_gradient:
        assert rule.__module__.rpartition(".")[0] == op_class.__module__.rpartition(".")[0]


def test_a_missing_rule_names_the_op_and_the_docs():
    class Mystery(Op):
        pass

    with pytest.raises(rules.UnsupportedOpError, match=r"Mystery.*docs/tensor.md"):
        rules.emission_rule(Mystery())
    with pytest.raises(rules.NullGradientError, match=r"Mystery.*docs/grad.md"):
        rules.vjp_rule(Mystery())


def test_public_import_paths():
    import scanaot.runtime
    import scanaot.tensor as at
    from scanaot.scan import until
    from scanaot.scan.utils import until as until_too

    assert until is until_too is scanaot.scan.utils.until is scanaot.until
    assert callable(scanaot.scan) and scanaot.scan.scan is scanaot.scan.basic.scan
    for name in ("function", "Function", "compile", "compile_many", "Artifact", "grad", "dot",
                 "scan_checkpoints", "config", "tensor", "gradient"):
        assert getattr(scanaot, name) is not None
    assert at.vector and scanaot.runtime.load and scanaot.gradient.grad is scanaot.grad
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        scanaot.nonexistent  # noqa: B018


def test_every_target_module_gives_the_pipelines_names():
    """targets/pipeline.py and the packaging call these on whichever target is asked for
    (CONTRIBUTING.md, "Adding a target")."""
    from scanaot.targets import TARGETS
    hooks = ("record", "front_end_keys", "before_lowering", "before_bufferization", "after_bufferization",
             "share", "specialize", "to_llvm")
    constants = ("TILED_MATMULS", "DISPATCH_BY_CPU", "RUNTIME_SOURCES", "EXTRA_EXPORTS")
    for name, module in TARGETS.items():
        assert all(callable(getattr(module, hook, None)) for hook in hooks), name
        assert all(hasattr(module, constant) for constant in constants), name
