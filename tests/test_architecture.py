"""The walls of the house (docs/architecture.md), read from the imports of every module.

Every ``import`` and ``from ... import`` is read with ``ast``, including those
inside functions (the code imports optional parts lazily), and judged by the
package of the importing module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRONT_ENDS = ("gateway.acme", "gateway.est", "gateway.scep", "gateway.admin", "gateway.pkix")

# Importing package (prefix) → module prefixes it must never import, and why.
WALLS: dict[str, tuple[tuple[str, ...], str]] = {
    **{front: (("gateway.storage", "gateway.validation", "connectors"),
               "front ends reach storage, validation and CAs only through the core")
       for front in FRONT_ENDS},
    "gateway.core": ((*FRONT_ENDS, "aiohttp.web"),
                     "the core knows no wire format and no HTTP server"),
    "gateway.storage": (("gateway.core", "gateway.validation", "connectors", *FRONT_ENDS),
                        "storage sits below the core: both use gateway.model"),
    "gateway.model": (("gateway.core", "gateway.storage", "gateway.validation", "gateway.config",
                       "connectors", "aiohttp", *FRONT_ENDS),
                      "the model is the floor every layer stands on"),
    "gateway.validation": (("gateway.core", "gateway.storage", "connectors", *FRONT_ENDS),
                           "validators are called by the core and call nothing above"),
    "connectors": (("gateway",), "connectors are usable without the gateway"),
}


def _modules() -> Iterator[tuple[str, Path]]:
    for top in ("gateway", "connectors"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def _imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # "from gateway import storage" names a module too
                yield node.lineno, f"{base}.{alias.name}"


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _breaches() -> list[str]:
    found = []
    for module, path in _modules():
        for owner, (forbidden, why) in WALLS.items():
            if not _within(module, owner):
                continue
            for line, imported in _imports(path, module):
                bad = next((f for f in forbidden if _within(imported, f)), None)
                if bad is not None:
                    rel = path.relative_to(ROOT)
                    found.append(f"{rel}:{line} imports {imported} ({owner} → {bad}: {why})")
    return sorted(set(found))


def test_no_module_breaks_a_wall() -> None:
    assert _breaches() == []


@pytest.mark.parametrize("owner", sorted(WALLS))
def test_every_wall_has_modules_behind_it(owner: str) -> None:
    """A renamed package would leave its wall guarding nothing: fail instead."""
    assert any(_within(module, owner) for module, _ in _modules())


def test_the_reader_sees_a_breach(tmp_path: Path) -> None:
    """The import reader itself: absolute, relative, lazy and ``from X import module``."""
    source = tmp_path / "m.py"
    source.write_text("import a.b\nfrom . import c\ndef f():\n    from ..d import e\n")
    assert list(_imports(source, "pkg.sub.m")) == [
        (1, "a.b"), (2, "pkg.sub"), (2, "pkg.sub.c"), (4, "pkg.d"), (4, "pkg.d.e")]
