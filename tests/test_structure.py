"""The package's structure, read from its source with ``ast``: one home per concept.

- No module of ``dlvr_jax`` (nor ``benchmarks``) imports or uses another
  module's underscore names. What is shared inside the package lives in an
  internal module (``_validate``, ``_io``, ``_xla``) under names without an
  underscore; importing those modules is allowed, their private names are not.
- Imports point one way, as STYLE.md's module table says (:data:`LAYERS`):
  a module imports only modules of a lower layer, and only ``viz`` imports
  matplotlib.
- Tests may reach a private name only through a documented seam: the
  :data:`SEAMS` table names each one and says why the test needs it. A seam
  that the code no longer has fails the test too, so the table stays true.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
from collections.abc import Iterator
from typing import NamedTuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dlvr_jax"

INTERNAL = ("_validate", "_io", "_xla")
"""Internal modules: shared helpers under public names, importable by any module."""

LAYERS: dict[str, int] = {
    "_validate": 0,
    "_io": 0,
    "_xla": 0,
    "data": 1,
    "models": 1,
    "optim": 1,
    "losses": 2,
    "tensor": 2,
    "perceptron": 2,
    "descent": 2,
    "engine": 3,
    "train": 4,
    "parallel": 5,
    "checkpoint": 5,
    "viz": 6,
    "jobs": 7,
    "cli": 8,
    "playground": 7,  # beside jobs: the cli (8) starts it
    "estimators": 8,
    "__init__": 9,
    "__main__": 9,
}
"""A module may import modules of a strictly lower layer only (STYLE.md's arrows)."""

SEAMS: dict[tuple[str, str], str] = {
    ("data", "_*"): (
        "each generator's jitted core (data.<name> -> data._<name>), replaced by one that "
        "fails, to show that the public door validates before anything is traced"
    ),
    ("data", "_format"): "the CSV writer's formatter, made to raise mid-write: the write is atomic",
    ("perceptron", "_train"): "the compiled PLA core, made to fail: validation runs before tracing",
    ("perceptron", "_advance"): "the batched core, spied on to count the lanes each chunk runs",
    (
        "parallel",
        "_jitted_sweep",
    ): "the sweep's jitted body, spied on: the program is cached per shape",
    (
        "parallel",
        "_sharded_run",
    ): "the sharded program, lowered to check that XLA inserted the all-reduce",
    (
        "descent",
        "_descend",
    ): "the compiled descent loop, made to fail: validation runs before tracing",
    (
        "descent",
        "_sgd_descend",
    ): "the compiled SGD loop, made to fail: validation runs before tracing",
    ("cli", "_progress"): "the progress bar's factory, driven with a fake terminal on stderr",
}
"""``(module, private name)`` -> why a test may touch it (``_*``: any, through a computed name)."""

DEPRECATED_FORWARDS: dict[tuple[str, str], str] = {
    ("optim", "descent"): (
        "optim's module __getattr__ forwards the descent toolkit's old names, with a "
        "DeprecationWarning, for one release; it imports descent lazily, when an old name is used"
    ),
}
"""``(module, imported)``: an import against the arrows, allowed for a deprecation path only."""


class Use(NamedTuple):
    """A private name of another module, used in ``file`` at ``line``."""

    file: str
    line: int
    module: str
    name: str


def _sources(folder: pathlib.Path) -> Iterator[pathlib.Path]:
    yield from sorted(p for p in folder.rglob("*.py") if "_build" not in p.parts)


def _package_module(dotted: str) -> str | None:
    """``dlvr_jax.train`` -> ``train``; anything else -> None."""
    parts = dotted.split(".")
    if parts[0] != "dlvr_jax":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


class _Reader(ast.NodeVisitor):
    """Collects a file's imports of package modules and its uses of their private names."""

    def __init__(self, file: str, own: str | None) -> None:
        self.file, self.own = file, own
        self.aliases: dict[str, str] = {}  # local name -> package module
        self.imported: set[str] = set()  # package modules imported
        self.third_party: set[str] = set()
        self.uses: list[Use] = []

    def _use(self, node: ast.AST, module: str, name: str) -> None:
        if module != self.own and name.startswith("_") and not name.startswith("__"):
            self.uses.append(Use(self.file, getattr(node, "lineno", 0), module, name))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            module = _package_module(alias.name)
            if module is None:
                self.third_party.add(alias.name.split(".")[0])
                continue
            self.imported.add(module)
            if alias.asname:
                self.aliases[alias.asname] = module
            elif module != "__init__":
                self.aliases.setdefault("dlvr_jax." + module, module)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or node.module is None:
            return
        module = _package_module(node.module)
        if module is None:
            self.third_party.add(node.module.split(".")[0])
            return
        for alias in node.names:
            if module == "__init__":  # from dlvr_jax import train [as t]
                self.imported.add(alias.name)
                self.aliases[alias.asname or alias.name] = alias.name
            else:  # from dlvr_jax.train import fit
                self.imported.add(module)
                self._use(node, module, alias.name)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            self._use(node, self.aliases[node.value.id], node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # setattr / getattr / monkeypatch.setattr(module, "_name", ...)
        func = node.func
        named = (isinstance(func, ast.Name) and func.id in ("setattr", "getattr", "delattr")) or (
            isinstance(func, ast.Attribute) and func.attr in ("setattr", "delattr")
        )
        if named and len(node.args) >= 2:
            target, attribute = node.args[0], node.args[1]
            if isinstance(target, ast.Name) and target.id in self.aliases:
                module = self.aliases[target.id]
                if isinstance(attribute, ast.Constant) and isinstance(attribute.value, str):
                    self._use(node, module, attribute.value)
                elif isinstance(attribute, ast.JoinedStr):
                    head = attribute.values[0] if attribute.values else None
                    if isinstance(head, ast.Constant) and str(head.value).startswith("_"):
                        self._use(node, module, "_*")
        self.generic_visit(node)


def _read(path: pathlib.Path, own: str | None) -> _Reader:
    reader = _Reader(str(path.relative_to(ROOT)), own)
    reader.visit(ast.parse(path.read_text(), filename=str(path)))
    return reader


SUBPACKAGES = ("playground",)
"""Subpackages: each file of ``dlvr_jax/<name>/`` belongs to module ``<name>`` (one layer)."""


def _module_of(path: pathlib.Path) -> str:
    """``dlvr_jax/train.py`` -> ``train``; ``dlvr_jax/playground/server.py`` -> ``playground``."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 and parts[0] in SUBPACKAGES else path.stem


def _package_readers() -> dict[str, list[_Reader]]:
    readers: dict[str, list[_Reader]] = {}
    for path in _sources(PACKAGE):
        module = _module_of(path)
        readers.setdefault(module, []).append(_read(path, module))
    return readers


def _show(uses: list[Use]) -> str:
    return "\n".join(f"{u.file}:{u.line}: {u.module}.{u.name}" for u in uses)


def test_no_module_uses_another_modules_private_names():
    uses = [use for group in _package_readers().values() for r in group for use in r.uses]
    assert not uses, "private names used across modules:\n" + _show(uses)


def test_benchmarks_use_only_public_names_of_the_package():
    uses = [use for path in _sources(ROOT / "benchmarks") for use in _read(path, None).uses]
    assert not uses, "benchmarks use private names of dlvr_jax:\n" + _show(uses)


def test_every_package_module_has_a_layer():
    assert set(_package_readers()) <= set(LAYERS), "add the new module to LAYERS (and STYLE.md)"


def test_imports_point_one_way():
    wrong = []
    for module, group in _package_readers().items():
        for imported in sorted({name for reader in group for name in reader.imported}):
            # Importing the package itself (for __version__) is allowed everywhere;
            # the files of a subpackage may import each other.
            if (module, imported) in DEPRECATED_FORWARDS or imported == module:
                continue
            if imported != "__init__" and LAYERS.get(imported, -1) >= LAYERS[module]:
                wrong.append(f"{module} (layer {LAYERS[module]}) imports {imported} "
                             f"(layer {LAYERS[imported]})")  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_only_viz_imports_matplotlib():
    importers = sorted(
        m
        for m, group in _package_readers().items()
        if any("matplotlib" in r.third_party for r in group)
    )
    assert importers == ["viz"]


def test_tests_touch_private_names_only_through_documented_seams():
    uses = []
    for path in _sources(ROOT / "tests"):
        uses += [u for u in _read(path, None).uses if (u.module, u.name) not in SEAMS]
    assert not uses, (
        "tests use private names that are not documented seams (add them to SEAMS with a "
        "reason, or use the public API):\n" + _show(uses)
    )


@pytest.mark.parametrize("seam", sorted(SEAMS), ids=lambda seam: ".".join(seam))
def test_every_documented_seam_exists(seam):
    module, name = seam
    loaded = importlib.import_module(f"dlvr_jax.{module}")
    if name == "_*":
        assert any(n.startswith("_") and not n.startswith("__") for n in vars(loaded))
    else:
        assert hasattr(loaded, name), f"seam {module}.{name} no longer exists: update SEAMS"


def test_the_reader_catches_what_it_forbids(tmp_path):
    # The checks above would pass vacuously if the reader missed these forms.
    source = tmp_path / "sample.py"
    source.write_text(
        "from dlvr_jax import train, _validate as check\n"
        "import dlvr_jax.optim as o\n"
        "from dlvr_jax.train import _run\n"
        "train._loop\n"
        "check._show\n"
        "o._build\n"
        "monkeypatch.setattr(train, '_run', None)\n"
        "monkeypatch.setattr(train, f'_{name}', None)\n"
        "check.show\n"
        "train.__doc__\n"
    )
    reader = _Reader("sample.py", None)
    reader.visit(ast.parse(source.read_text()))
    found = sorted((u.module, u.name) for u in reader.uses)
    assert found == sorted(
        [
            ("train", "_run"),
            ("train", "_loop"),
            ("_validate", "_show"),
            ("optim", "_build"),
            ("train", "_run"),
            ("train", "_*"),
        ]
    )
    assert reader.imported == {"train", "_validate", "optim"}
