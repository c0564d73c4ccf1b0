"""What the package's structure is, from its own source: import loops, class and module sizes.

Every import counts, the ones inside functions too (they are how loops hide). Run through
`scripts/measure-structure`; `--check` exits 1 when a loop, a class over 400 lines or a module
over 800 lines exists (CI runs it beside `lint-imports`, which checks the layers).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

MAX_CLASS = 400
MAX_MODULE = 800


def modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every .py under the package root."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    # `from calsync.a import b` may import module calsync.a.b or name b of calsync.a.
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules `name` imports, anywhere in its file."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            if (resolved := _resolve(target, known)) and resolved != name:
                found.add(resolved)
    return found


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def classes(name: str, path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        (f"{name}.{node.name}", node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    ]


def measure(root: Path) -> dict:
    known = modules(root)
    graph = {name: imports(name, path, known) for name, path in known.items()}
    sizes = {name: len(path.read_text().splitlines()) for name, path in known.items()}
    all_classes = sorted(
        (c for name, path in known.items() for c in classes(name, path)), key=lambda c: -c[1]
    )
    found_loops = loops(graph)
    return {
        "modules": len(known),
        "lines": sum(sizes.values()),
        "loops": found_loops,
        "modules_in_loops": sum(len(loop) for loop in found_loops),
        "largest_classes": all_classes[:8],
        "largest_modules": sorted(sizes.items(), key=lambda s: -s[1])[:8],
        "classes_over": [c for c in all_classes if c[1] > MAX_CLASS],
        "modules_over": [m for m in sorted(sizes.items(), key=lambda s: -s[1]) if m[1] > MAX_MODULE],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="calsync", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 on a loop or an oversize")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.root)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['modules']} modules, {result['lines']} lines")
        print(f"modules in import loops: {result['modules_in_loops']} in {len(result['loops'])} loop(s)")
        for loop in result["loops"]:
            print("  loop: " + ", ".join(loop))
        print("largest classes: " + ", ".join(f"{n} {s}" for n, s in result["largest_classes"][:6]))
        print("largest modules: " + ", ".join(f"{n} {s}" for n, s in result["largest_modules"][:6]))
        for n, s in result["classes_over"]:
            print(f"  class over {MAX_CLASS} lines: {n} ({s})")
        for n, s in result["modules_over"]:
            print(f"  module over {MAX_MODULE} lines: {n} ({s})")
    bad = result["loops"] or result["classes_over"] or result["modules_over"]
    return 1 if args.check and bad else 0


if __name__ == "__main__":
    sys.exit(main())
