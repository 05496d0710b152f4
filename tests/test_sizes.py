"""The sizes the code keeps: no function over 40 lines outside tests (its docstring aside)
and no class over 25 public methods, in lockerd/ and drivers/; and drivers/ never imports
lockerd/ (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.daemon import ROOT

MAX_LINES = 40
MAX_PUBLIC_METHODS = 25


def _sources() -> list[Path]:
    return sorted([*(ROOT / "lockerd").rglob("*.py"), *(ROOT / "drivers").rglob("*.py")])


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A function's lines, its docstring left out."""
    lines = (node.end_lineno or node.lineno) - node.lineno + 1
    first = node.body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    if docstring and isinstance(first.value.value, str):  # type: ignore[attr-defined]
        lines -= (first.end_lineno or first.lineno) - first.lineno + 1
    return lines


def _too_long(source: str) -> list[str]:
    return [
        f"{node.name}: {body_lines(node)} lines"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and body_lines(node) > MAX_LINES
    ]


def _too_wide(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            public = [
                m.name
                for m in node.body
                if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                and not m.name.startswith("_")
            ]
            if len(public) > MAX_PUBLIC_METHODS:
                found.append(f"{node.name}: {len(public)} public methods")
    return found


def test_no_function_is_over_40_lines() -> None:
    found = {str(p.relative_to(ROOT)): _too_long(p.read_text()) for p in _sources()}
    assert {path: names for path, names in found.items() if names} == {}


def test_no_class_has_over_25_public_methods() -> None:
    found = {str(p.relative_to(ROOT)): _too_wide(p.read_text()) for p in _sources()}
    assert {path: names for path, names in found.items() if names} == {}


def test_the_checks_see_a_long_function_and_a_wide_class() -> None:
    body = "\n".join(f"    x{n} = {n}" for n in range(MAX_LINES - 1))  # and the def line
    assert _too_long(f'def f():\n    """Doc."""\n{body}\n') == []
    assert _too_long(f"def f():\n{body}\n    return x0\n") == [f"f: {MAX_LINES + 1} lines"]
    methods = "\n".join(f"    def m{n}(self): ...\n    def _p{n}(self): ..." for n in range(26))
    assert _too_wide(f"class C:\n{methods}\n") == ["C: 26 public methods"]


def test_drivers_import_nothing_of_lockerd() -> None:
    wrong = {}
    for path in sorted((ROOT / "drivers").rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        bad = sorted(n for n in names if n == "lockerd" or n.startswith("lockerd."))
        if bad:
            wrong[str(path.relative_to(ROOT))] = bad
    assert wrong == {}
