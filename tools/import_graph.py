"""The import graph of the ``gptbook`` package: its modules, the arrows between them and the import cycles.

Reads the source with ``ast`` (nothing is imported or run). Every import counts, also one inside a function (it
runs sooner or later) and one under ``if TYPE_CHECKING:`` is left out (it never runs). ``from . import x`` where
``x`` is a module is an arrow to that module; importing ``gptbook.a.b`` is an arrow to ``gptbook.a.b`` only, not to
the package ``gptbook.a`` (whose ``__init__`` the import runs too: keep packages' ``__init__`` free of imports that
could close a circle, as ``gptbook.loading``'s is).

    python tools/import_graph.py            modules, arrows, floors and cycles
    python tools/import_graph.py --cycles   only the cycles (one per line: a -> b -> a)
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "gptbook"


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of the package (``__init__.py`` is the package itself)."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST) -> Iterable[ast.AST]:
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


def arrows(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (function-level imports included)."""
    files = module_files(root, package)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        here = name if is_pkg else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = here.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{alias.name}" if f"{mod}.{alias.name}" in files else mod for alias in node.names]
            for target in targets:
                while target and target not in files:  # "gptbook.x.attr" -> "gptbook.x"
                    target = target.rpartition(".")[0]
                if target and target != name and target != package:
                    graph[name].add(target)
                elif target == package and name != package:
                    graph[name].add(package)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (each an import cycle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor: 0 for one that imports no module of the package, else 1 + its highest import's floor
    (modules in a cycle share the cycle's floor)."""
    component = {v: v for v in graph}
    for cycle in cycles(graph):
        for v in cycle:
            component[v] = cycle[0]
    memo: dict[str, int] = {}

    def floor(v: str, seen: frozenset = frozenset()) -> int:
        c = component[v]
        if c in memo:
            return memo[c]
        members = [u for u in graph if component[u] == c]
        below = [component[w] for u in members for w in graph[u] if component[w] != c and component[w] not in seen]
        memo[c] = 1 + max((floor(w, seen | {c}) for w in below), default=-1)
        return memo[c]

    return {v: floor(v) for v in graph}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", action="store_true", help="print only the import cycles")
    args = parser.parse_args(argv)
    graph = arrows()
    found = cycles(graph)
    if args.cycles:
        for cycle in found:
            print(" <-> ".join(cycle))
        return 0
    level = floors(graph)
    n_arrows = sum(len(v) for v in graph.values())
    print(f"{len(graph)} modules, {n_arrows} arrows, {max(level.values()) + 1} floors, {len(found)} cycles")
    for v in sorted(graph, key=lambda m: (level[m], m)):
        print(f"  [{level[v]:2d}] {v} -> {', '.join(sorted(graph[v])) or '-'}")
    for cycle in found:
        print("cycle: " + " <-> ".join(cycle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
