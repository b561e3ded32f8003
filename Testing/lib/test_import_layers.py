"""The package's import graph, read from the source (imports inside functions included): no cycles, and
evaluation does not depend on training, so each can change without dragging the other along."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "RefSAM3DLib"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every RefSAM3DLib module ``path`` imports, at module level or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("RefSAM3DLib"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("RefSAM3DLib"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ re-exporting its submodules is not a dependency between the submodules."""
    packages = {name for name in graph if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()}
    return {name: {m for m in targets if m not in packages} for name, targets in graph.items() if name not in packages}


def test_named_cycles_are_gone():
    graph = import_graph()
    assert "RefSAM3DLib.io.readers" in graph["RefSAM3DLib.commands.segment"]  # the graph sees real imports
    assert "RefSAM3DLib.vocab.matcher" not in graph["RefSAM3DLib.vocab.concepts"]
    assert "RefSAM3DLib.cli" not in set().union(*(graph[m] for m in graph if m.startswith("RefSAM3DLib.commands")))
    assert not any(t.startswith("RefSAM3DLib.training") for m in graph if m.startswith("RefSAM3DLib.evaluation")
                   for t in graph[m])


def test_no_import_cycles():
    assert _cycles(_without_package_inits(import_graph())) == []
