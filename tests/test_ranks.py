"""Every package of segswap has one rank, bottom to top, as listed in ``segswap/__init__.py``'s docstring;
no package imports one of its own rank or above, and no two modules import each other, even through
imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "segswap"


def ranks(package_dir: Path = SOURCE) -> list[str]:
    """The packages in the order of the docstring's block introduced by "bottom to top", lowest first."""
    doc = ast.get_docstring(ast.parse((package_dir / "__init__.py").read_text()))
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if "bottom to top" in line)
    block = lines[start + 1:]
    while block and (not block[0].strip() or not block[0].startswith(" ")):  # the rest of the paragraph, the blank line
        block = block[1:]
    names = []
    for line in block:
        if not line.strip():
            break
        names.append(line.split()[0])
    return names


def modules(package_dir: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name → (file, whether it is a package's ``__init__``)."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def imports(package_dir: Path) -> dict[str, list[tuple[str, int]]]:
    """For each module of the package: the package's modules it imports, with the line, wherever the
    import statement is (module level, inside a function or a branch); relative imports resolved."""
    known = modules(package_dir)
    top = package_dir.name
    edges = {}
    for name, (path, is_package) in known.items():
        found = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1] if node.level else []
                parent = ".".join(base + ([node.module] if node.module else []))
                # `from package import module` imports the module; `from module import name` the module
                targets = [f"{parent}.{alias.name}" if f"{parent}.{alias.name}" in known else parent for alias in node.names]
            else:
                continue
            for target in targets:
                if target != top and not target.startswith(top + "."):
                    continue
                while target not in known:  # an attribute's module
                    target = target.rpartition(".")[0]
                if target != name:
                    found.append((target, node.lineno))
        edges[name] = found
    return edges


def package_of(module: str) -> str:
    """``segswap.train.loop`` → ``train``; ``segswap.pair`` → ``pair``; ``segswap`` → ``segswap``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def rank_violations(package_dir: Path, order: list[str]) -> list[str]:
    """``module -> module (line N)`` for every import of a package of the same rank or a higher one."""
    rank = {name: i for i, name in enumerate(order)}
    found = []
    for module, targets in imports(package_dir).items():
        for target, line in targets:
            low, high = package_of(module), package_of(target)
            if low != high and low in rank and high in rank and rank[low] <= rank[high]:  # unranked: the test above
                found.append(f"{module} -> {target} (line {line}): {low} imports {high}, which is not below it")
    return sorted(found)


def module_cycles(package_dir: Path) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a circle (Tarjan's components)."""
    graph = {module: {target for target, _ in targets} for module, targets in imports(package_dir).items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_every_package_has_exactly_one_rank():
    order = ranks()
    present = {package_of(module) for module in modules(SOURCE)}
    assert len(order) == len(set(order)), f"listed twice: {sorted({n for n in order if order.count(n) > 1})}"
    assert present == set(order), f"without a rank: {sorted(present - set(order))}; listed but absent: {sorted(set(order) - present)}"


def test_no_package_imports_its_own_rank_or_a_higher_one():
    violations = rank_violations(SOURCE, ranks())
    assert not violations, "imports against the ranks in segswap/__init__.py:\n" + "\n".join(violations)


def test_no_two_modules_import_each_other():
    cycles = module_cycles(SOURCE)
    assert not cycles, "modules in an import circle:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.fixture
def toy(tmp_path):
    """A package ``toy`` with a low and a high package; the low one imports the high one inside a
    function, through a relative import, and two of the high one's modules import each other."""
    root = tmp_path / "toy"
    files = {
        "__init__.py": '"""Toy.\n\nbottom to top::\n\n    low   first\n    high  second\n"""\n',
        "low/__init__.py": "",
        "low/base.py": "def f():\n    from ..high.top import g\n    return g\n",
        "high/__init__.py": "",
        "high/top.py": "from . import other\n\ng = 1\n",
        "high/other.py": "import toy.high.top\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_checks_see_imports_inside_functions_and_relative_ones(toy):
    assert ranks(toy) == ["low", "high"]
    assert rank_violations(toy, ranks(toy)) == ["toy.low.base -> toy.high.top (line 2): low imports high, which is not below it"]
    assert module_cycles(toy) == [["toy.high.other", "toy.high.top"]]
