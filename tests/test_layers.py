"""The house's layers (docs/development.md draws them): every module of the project, read as
source, imports only from its own layer's unit or from the layers below, and no two modules
import each other, however far round. Imports inside functions count as much as those at the
top: a lazy import is still an arrow."""

import ast
from pathlib import Path

from tests.test_settings import ROOT

# Lowest first. A unit is a group of modules (by dotted prefix) that may import each other;
# it may import from any unit of a lower layer, never from its own layer's other units or
# from above.
LAYERS: list[dict[str, tuple[str, ...]]] = [
    {"devstack": ("devstack",)},
    {"errors": ("core.errors",)},
    {
        "generation": ("core.generation",),
        "source": ("core.source",),
        "storage": ("core.storage",),
    },
    {"shop": ("core.models", "core.admin", "core.apps", "core.migrations")},
    {"capture": ("core.capture",), "seeding": ("core.seeding",)},
    {
        "replication": ("core.replication",),
        "simulation": ("core.simulation",),
        "lake": ("core.lake",),
    },
    {"verify": ("core.verify",)},
    {"pipeline": ("core.pipeline",)},
    {"management": ("core.management",)},
    {"project": ("lakehouse", "manage")},
]


def unit_of(module: str) -> tuple[int, str] | None:
    """(layer, unit) of one of our modules, by its longest matching prefix; None if it is
    not ours (a library)."""
    best = None
    for level, units in enumerate(LAYERS):
        for unit, prefixes in units.items():
            for prefix in prefixes:
                if (module == prefix or module.startswith(prefix + ".")) and (
                    best is None or len(prefix) > best[2]
                ):
                    best = (level, unit, len(prefix))
    return None if best is None else best[:2]


def our_modules() -> dict[str, Path]:
    """Every module of the project (tests and benchmarks aside), but empty __init__ files."""
    found = {"manage": ROOT / "manage.py"}
    for package in ("core", "devstack", "lakehouse"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "__init__.py" and not path.read_text().strip():
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ours that `name` imports, wherever in the file the import stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            # `from core.storage import registry` imports the module core.storage.registry.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = our_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def test_every_module_has_a_place_in_the_layers():
    assert [name for name in our_modules() if unit_of(name) is None] == []


def test_no_module_imports_from_above_or_from_a_neighbour_of_its_layer():
    wrong = []
    for name, imported in sorted(graph().items()):
        level, unit = unit_of(name)
        for target in sorted(imported):
            their_level, their_unit = unit_of(target)
            if their_level > level or (their_level == level and their_unit != unit):
                wrong.append(f"{name} ({unit}) imports {target} ({their_unit})")
    assert wrong == []


def test_no_import_cycle():
    edges = graph()
    cycles = []

    def visit(node: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for target in sorted(edges[node]):
            if target in on_path:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in done:
                visit(target, [*path, target], on_path | {target}, done)
        done.add(node)

    done: set[str] = set()
    for start in sorted(edges):
        if start not in done:
            visit(start, [start], {start}, done)
    assert cycles == []


def test_the_rules_catch_an_upward_import_and_a_cycle(tmp_path):
    """The walk itself: an import from above and a loop are seen, at the top of a file or
    inside a function."""
    upward = tmp_path / "upward.py"
    upward.write_text("def f():\n    from core.lake.apply import apply_capture\n")
    known = {"core.lake.apply", "core.storage.location"}
    assert imports_of("core.storage.location", upward, known) == {"core.lake.apply"}
    assert unit_of("core.lake.apply")[0] > unit_of("core.storage.location")[0]
    relative = tmp_path / "relative.py"
    relative.write_text("from .apply import apply_capture\nfrom . import apply\n")
    assert imports_of("core.lake.maintain", relative, known) == {"core.lake.apply"}
