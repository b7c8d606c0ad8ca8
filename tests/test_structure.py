"""The package's structure, read from its source with ``ast``: one home per concept.

- No module of ``dlvr_jax`` (nor ``benchmarks``) imports or uses another
  module's underscore names. What is shared inside the package lives in an
  internal module (``_validate``, ``_io``, ``_xla``) under names without an
  underscore; importing those modules is allowed, their private names are not.
- Imports point one way, as docs/design.md's module table says (:data:`LAYERS`):
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

INTERNAL = ("_validate", "_io", "_xla", "_compiled", "_tables")
"""Internal modules: shared helpers under public names, importable by any module."""

LAYERS: dict[str, int] = {
    "_validate": -1,
    "_io": 0,
    "_xla": 0,
    "_compiled": 0,
    "_tables": 0,
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
    "playground": 8,  # on jobs (one problem preparation): the cli (9) starts it
    "cli": 9,
    "estimators": 8,
    "__init__": 10,
    "__main__": 10,
}
"""A module may import modules of a strictly lower layer only (docs/design.md's arrows)."""

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
    ("parallel", "_compiled_sweep"): (
        "the sweep's compile step, made to fail: a sweep cancelled before it starts compiles "
        "nothing (a compile cannot be interrupted)"
    ),
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


SUBPACKAGES = ("playground", "jobs", "viz", "engine")
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
    assert set(_package_readers()) <= set(LAYERS), (
        "add the new module to LAYERS (and docs/design.md)"
    )


def test_imports_point_one_way():
    wrong = []
    for module, group in _package_readers().items():
        for imported in sorted({name for reader in group for name in reader.imported}):
            # Importing the package itself (for __version__) is allowed everywhere;
            # the files of a subpackage may import each other.
            if imported == module:
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


# ----------------------------------------------------------------------------
# One core under every door (issue 18): options declared once, one host loop,
# rooms of a size one can hold.


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _options_declared(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The parameters a caller passes as options: keyword-only, or positional with a default."""
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaulted = positional[len(positional) - len(arguments.defaults) :]
    return {argument.arg for argument in [*defaulted, *arguments.kwonlyargs]}


OPTIONS_EXEMPT = {
    ("dlvr_jax/estimators.py", "__init__"): (
        "scikit-learn requires __init__ to list every hyperparameter (get_params reads it)"
    ),
}
"""Functions allowed to declare training options themselves, and why."""


def _option_declarers(source: str, file: str) -> list[str]:
    from dlvr_jax import engine

    found = []
    for function in _functions(ast.parse(source)):
        declared = _options_declared(function) & set(engine.OPTIONS)
        if len(declared) >= 3 and (file, function.name) not in OPTIONS_EXEMPT:
            names = ", ".join(sorted(declared))
            found.append(f"{file}:{function.lineno}: {function.name}({names})")
    return found


def test_training_options_are_declared_once():
    # The engine is the one place: it declares the options (engine.FitOptions, checked by
    # engine.check_fit) and its core takes the checked values. Every door takes **options.
    found = []
    for path in _sources(PACKAGE):
        if _module_of(path) != "engine":
            found += _option_declarers(path.read_text(), str(path.relative_to(ROOT)))
    assert not found, (
        "functions that declare three or more training options (take "
        "**options: Unpack[engine.FitOptions] instead):\n" + "\n".join(found)
    )


def test_the_option_count_catches_a_redeclared_signature():
    source = (
        "def fit(key, model, optimizer, data, *, epochs, batch_size=None, l2=0.0):\n    pass\n"
        "def old(key, data, epochs=1, batch_size=None, test=None):\n    pass\n"
        "def core(state, data, test, epochs, batch_size):\n    pass\n"
        "def door(key, **options):\n    pass\n"
    )
    assert [line.split(": ")[1] for line in _option_declarers(source, "x.py")] == [
        "fit(batch_size, epochs, l2)",
        "old(batch_size, epochs, test)",
    ]


EPOCH_PROGRAM = ("run", "compiled_run", "run_epochs")
"""The engine's compiled epoch program: only the engine's host loop calls it."""

MAPS_THE_PROGRAM = {
    ("parallel", "run_epochs"): (
        "parallel maps the engine's core (vmap for sweeps, pmap, jit with shardings) inside "
        "programs that engine.loop drives"
    ),
}
"""Modules that may reference the epoch program outside the engine, and why."""


def _program_uses(source: str, file: str, own: str) -> list[str]:
    reader = _Reader(file, own)
    tree = ast.parse(source)
    reader.visit(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and reader.aliases.get(node.value.id) == "engine"
            and node.attr in EPOCH_PROGRAM
            and (own, node.attr) not in MAPS_THE_PROGRAM
        ):
            found.append(f"{file}:{node.lineno}: engine.{node.attr}")
    return found


def test_only_the_engine_runs_the_compiled_epoch_program():
    found = []
    for path in _sources(PACKAGE):
        module = _module_of(path)
        if module != "engine":
            found += _program_uses(path.read_text(), str(path.relative_to(ROOT)), module)
    assert not found, (
        "modules that call the compiled epoch program themselves (use train.fit, "
        "engine.FitPlan.run or engine.loop):\n" + "\n".join(found)
    )


def test_the_program_check_catches_a_direct_call():
    source = "from dlvr_jax import engine as e\ne.run(state, data, None, 1, 8)\n"
    assert _program_uses(source, "x.py", "jobs") == ["x.py:2: engine.run"]


MODULE_LINES = 1000
CLASS_LINES = 400
FUNCTION_CODE_LINES = 80
CLI_LINES = 500


def _code_lines(node: ast.AST, lines: list[str]) -> int:
    """Lines of code in ``node``: not blank, not comments, not its docstring."""
    start, end = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
    docstring: set[int] = set()
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        docstring = set(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    count = 0
    for number in range(start, end + 1):
        text = lines[number - 1].strip()
        if text and not text.startswith("#") and number not in docstring:
            count += 1
    return count


def _oversized() -> list[str]:
    found = []
    for path in _sources(PACKAGE):
        source = path.read_text()
        lines = source.splitlines()
        file = str(path.relative_to(ROOT))
        limit = CLI_LINES if path.name == "cli.py" and path.parent == PACKAGE else MODULE_LINES
        if len(lines) > limit:
            found.append(f"{file}: {len(lines)} lines (at most {limit})")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                reason = "one concept" in (ast.get_docstring(node) or "")
                if size > CLASS_LINES and not reason:
                    found.append(f"{file}:{node.lineno}: class {node.name}, {size} lines")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                code = _code_lines(node, lines)
                if code > FUNCTION_CODE_LINES:
                    found.append(f"{file}:{node.lineno}: {node.name}, {code} lines of code")
    return found


def test_rooms_are_of_a_size_one_can_hold():
    # Split by concept, not by size: these bounds only say when to look.
    found = _oversized()
    assert not found, "\n".join(found)


def test_no_import_cycle_between_package_files():
    graph: dict[str, set[str]] = {}
    for path in _sources(PACKAGE):
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        dotted = dotted.removesuffix(".__init__")
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[dotted] = targets
    known = set(graph)
    edges = {name: {t for t in targets if t in known and t != name} for name, targets in
             graph.items()}  # fmt: skip
    # Ignore the package __init__ files: they import lazily (PEP 562) or re-export.
    packages = {name for name in known if (ROOT / name.replace(".", "/")).is_dir()}
    cycles = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(edges[name] - packages):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = 2

    for name in sorted(known - packages):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
