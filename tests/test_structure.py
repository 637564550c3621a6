"""The package's shape: its imports form no cycle, and the schema version counts the migrations."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlite_utils import Database

import mailthreads
from mailthreads.db import SCHEMA_VERSION, open_database
from mailthreads.db.migrations import migrations

PACKAGE = Path(mailthreads.__file__).resolve().parent


def module_files(package: Path) -> dict[str, Path]:
    """{dotted module name: file} for every module of the package (``__init__`` as the package)."""
    modules = {}
    for file in sorted(package.rglob("*.py")):
        parts = file.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = file
    return modules


def imported_modules(name: str, file: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its code, at import time or
    inside a function (either can close a cycle); ``if TYPE_CHECKING:`` blocks too, since a
    cycle there still ties the modules together."""
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            # `from a import b` imports the module a.b if there is one, else a name from a.
            found |= {f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                      for alias in node.names}
    return {module for module in found if module in modules and module != name}


def import_graph(package: Path) -> dict[str, set[str]]:
    modules = module_files(package)
    return {name: imported_modules(name, file, modules) for name, file in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                lowest[module] = min(lowest[module], lowest[imported])
            elif imported in stack:
                lowest[module] = min(lowest[module], index[imported])
        if lowest[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_package_imports_form_no_cycle():
    graph = import_graph(PACKAGE)
    # The graph is read, not empty: the store is imported by some module.
    assert any("mailthreads.db.store" in imported for imported in graph.values())
    found = cycles(graph)
    assert found == [], f"modules that import each other: {found}"


def test_the_cycle_finder_finds_cycles_through_relative_and_absolute_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import b\n")
    (package / "a.py").write_text("def f():\n    from pkg.sub.b import g\n")
    (package / "sub" / "b.py").write_text("from ..a import f\nimport os\n")
    (package / "c.py").write_text("from pkg import a\n")
    graph = import_graph(package)
    assert graph == {"pkg": set(), "pkg.a": {"pkg.sub.b"}, "pkg.c": {"pkg.a"},
                     "pkg.sub": {"pkg.sub.b"}, "pkg.sub.b": {"pkg.a"}}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b"]]


def test_schema_version_is_the_number_of_migrations(tmp_path):
    every_step = migrations.pending(Database(memory=True))
    assert len(every_step) == SCHEMA_VERSION
    db = open_database(tmp_path / "mail.db")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [step.name for step in migrations.applied(db)] == [s.name for s in every_step]
    finally:
        db.close()
