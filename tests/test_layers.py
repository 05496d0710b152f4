"""The layering DESIGN.md fixes, read from the imports (ast), so it cannot regress."""

import ast
from pathlib import Path

from tests.daemon import ROOT

#: What the store may import of lockerd: the layers below it, and itself.
BELOW_THE_STORE = (
    "lockerd.store",
    "lockerd.domain",
    "lockerd.errors",
    "lockerd.codes",
    "lockerd.clock",
    "lockerd.config",
    "lockerd.throttle",
    "lockerd.qrtoken",
    "lockerd.sendcode",
    "lockerd.custody",
)
#: What the custody rules may import: vocabulary and config, nothing that does I/O.
BELOW_THE_RULES = ("lockerd.domain", "lockerd.errors", "lockerd.config.schema")


def imported(path: Path) -> set[str]:
    """Every module the file at ``path`` imports."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    return imports(path.read_text(), package)


def imports(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports; ``from a import b``
    counts as ``a`` and ``a.b``, relative imports as their absolute names."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _outside(names: set[str], allowed: tuple[str, ...]) -> set[str]:
    def ok(name: str) -> bool:
        return any(name == a or name.startswith(a + ".") for a in allowed)

    lockerd = {n for n in names if n == "lockerd" or n.startswith("lockerd.")}
    # ``from lockerd import custody`` names lockerd itself and the module it takes.
    return {n for n in lockerd if not ok(n) and not (n == "lockerd" and lockerd - {n})}


def test_the_store_imports_nothing_above_it() -> None:
    modules = sorted((ROOT / "lockerd" / "store").glob("*.py"))
    assert len(modules) > 10
    wrong = {
        str(m.relative_to(ROOT)): sorted(_outside(imported(m), BELOW_THE_STORE)) for m in modules
    }
    assert {m: names for m, names in wrong.items() if names} == {}


def test_the_custody_rules_are_pure() -> None:
    names = imported(ROOT / "lockerd" / "custody.py")
    assert _outside(names, BELOW_THE_RULES) == set()
    assert not names & {"sqlite3", "sqlite_utils", "asyncio"}


def test_the_check_sees_an_import_from_above() -> None:
    source = (
        "from lockerd.sync.commands import Command\n"
        "from . import _db\n"
        "from .. import locker\n"
        "import lockerd.kiosk.server\n"
    )
    assert _outside(imports(source, "lockerd.store"), BELOW_THE_STORE) == {
        "lockerd.sync.commands",
        "lockerd.sync.commands.Command",
        "lockerd.locker",
        "lockerd.kiosk.server",
    }
