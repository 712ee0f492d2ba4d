"""The broker's shape, read from its source: no import cycles inside ``jitsec.broker``, nothing
imported from the rest of jitsec but the kernel (the scanner side reaches the broker over HTTP), and
no lease state written anywhere but through ``broker.lifecycle.LeaseMachine``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import jitsec.broker  # binds ``jitsec`` too

BROKER = Path(jitsec.broker.__file__).parent
LEASE_WRITES = {"add_lease", "redeem_grant", "begin_revocation", "finish_revocation"}  # lifecycle.LeaseWrites
ALLOWED_OUTSIDE = ("jitsec.kernel",)


def _module_name(path: Path) -> str:
    parts = path.relative_to(BROKER).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("jitsec.broker", *parts))


MODULES = {_module_name(path): path for path in sorted(BROKER.rglob("*.py"))}


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module ``name`` imports, at any depth of its code (``TYPE_CHECKING`` blocks included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def _graph() -> dict[str, set[str]]:
    return {
        name: {target for target in _imports(name, path) if target in MODULES and target != name}
        for name, path in MODULES.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_reader_sees_the_whole_package() -> None:
    graph = _graph()
    assert "jitsec.broker.service" in graph and "jitsec.broker.store.sqlite" in graph
    assert "jitsec.broker.store.base" in graph["jitsec.broker.store.sqlite"]


def test_no_import_cycles_inside_the_broker() -> None:
    assert _cycles(_graph()) == []


def test_no_import_cycles_between_the_broker_packages() -> None:
    """Squashed to the broker's direct children (``api``, ``store``, ``engines`` as one node each)."""
    squashed: dict[str, set[str]] = {}
    for name, targets in _graph().items():
        top = ".".join(name.split(".")[:3])
        squashed.setdefault(top, set()).update(".".join(t.split(".")[:3]) for t in targets)
    assert _cycles({name: targets - {name} for name, targets in squashed.items()}) == []


def test_the_broker_imports_only_itself_and_the_kernel_from_jitsec() -> None:
    outside = sorted(
        f"{name} -> {target}"
        for name, path in MODULES.items()
        for target in _imports(name, path)
        if (target == "jitsec" or target.startswith("jitsec."))
        and not target.startswith(("jitsec.broker", *ALLOWED_OUTSIDE))
    )
    assert outside == []


def test_only_the_lease_machine_writes_lease_state() -> None:
    """No call of the store's lease writes, and no lease built or copied with a ``state``, outside
    ``broker/lifecycle.py`` and the stores themselves (which implement the writes and read rows)."""
    exempt = {BROKER / "lifecycle.py", *(BROKER / "store").rglob("*.py")}
    sources = sorted({*BROKER.rglob("*.py"), *Path(jitsec.__file__).parent.rglob("*.py")} - exempt)
    found = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in LEASE_WRITES or (name in {"Lease", "replace"} and any(
                keyword.arg == "state" for keyword in node.keywords
            )):
                found.append(f"{path.name}:{node.lineno} {name}")
    assert len(sources) > 50
    assert found == []
