"""The code base's layering holds: what may import what, where tables live, how big modules get.

routes -> the stages (ingest, judging, calibrate, routing, review, export) -> models / db.
calibration/ and judge/ are pure libraries (no web framework, no database), and so are a few api
modules the stages' pure core is built from.
The serving path never imports the CLI, the demo or the benchmarks (api/tools/).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.waiting import cpu_seconds, run_process, wait_for_progress

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("api", "judge", "calibration", "review_app", "prelabel")
MAX_MODULE_LINES = 600

# The database and web layers: a pure module must not load them, not even through another module.
FORBIDDEN = ("sqlmodel", "sqlalchemy", "alembic", "fastapi", "starlette", "api.db")
PURE_API_MODULES = (
    "api.routing.route",
    "api.vocab",
    "api.schemas",
    "api.review.redaction",
    "api.calibrate.reports_html",
    "api.calibrate.reports_plots",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(*tops: str) -> Iterator[Path]:
    for top in tops:
        yield from sorted((ROOT / top).rglob("*.py"))


def _pure_modules() -> list[str]:
    return [_module_name(p) for p in _sources("calibration", "judge")] + list(PURE_API_MODULES)


# --- pure modules, checked by really importing them ------------------------------------------------

# Runs in a fresh interpreter, so nothing the test process has loaded hides an import. A finder
# placed first on sys.meta_path sees every first import of a forbidden module and records which
# pure module was being imported and the project lines on the stack (the path to the offender).
_PROBE = textwrap.dedent(
    """
    import importlib, json, sys, traceback

    forbidden, root, modules = json.loads(sys.argv[1])
    found = {}
    current = None


    def _forbidden_root(name):
        return next((f for f in forbidden if name == f or name.startswith(f + ".")), None)


    class Spy:
        def find_spec(self, name, path=None, target=None):
            root_name = _forbidden_root(name)
            hits = found.get(current, [])
            # The first module of each forbidden package is enough (not all of sqlalchemy.*).
            if current is not None and root_name and all(h["root"] != root_name for h in hits):
                chain = [
                    f"{f.filename[len(root) + 1:]}:{f.lineno}: {(f.line or '').strip()}"
                    for f in traceback.extract_stack()
                    if f.filename.startswith(root) and "/.venv/" not in f.filename
                ]
                found.setdefault(current, []).append({"root": root_name, "imported": name, "via": chain})
            return None  # only watching: the real finders load the module


    sys.meta_path.insert(0, Spy())
    for current in modules:
        before = set(sys.modules)
        importlib.import_module(current)
        # Also whatever reached sys.modules without passing a finder (an alias someone set, say).
        extra = sorted(m for m in set(sys.modules) - before if _forbidden_root(m))
        if extra and current not in found:
            found[current] = [{"root": None, "imported": m, "via": []} for m in extra]
    print(json.dumps(found))
    """
)


def _probe(modules: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    args = json.dumps([list(FORBIDDEN), str(ROOT), modules])
    return subprocess.Popen(
        [sys.executable, "-c", _PROBE, args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _violations(modules: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Forbidden imports per pure module. Importing litellm (judge/) is slow, so the judge modules
    and the rest load in two interpreters side by side."""
    groups = [[m for m in modules if m.split(".")[0] == "judge"]]
    groups.append([m for m in modules if m not in groups[0]])
    running = [_probe(group) for group in groups if group]
    found: dict[str, list[dict[str, Any]]] = {}
    wait_for_progress(
        lambda: all(process.poll() is not None for process in running),
        lambda: [cpu_seconds(process.pid) for process in running],
        "the import probes",
    )
    for process in running:
        out, err = process.communicate()  # exited: its JSON line is small enough for a pipe
        assert process.returncode == 0, f"importing the pure modules failed:\n{err[-3000:]}"
        found.update(json.loads(out.strip().splitlines()[-1]))
    return found


def test_pure_modules_load_no_database_or_web_framework() -> None:
    modules = _pure_modules()
    found: dict[str, list[dict[str, Any]]] = {}
    # One offender already loaded sqlalchemy would hide a second one importing it later in the
    # same interpreter: check again without the offenders until a run finds nothing new.
    remaining = modules
    while remaining:
        new = _violations(remaining)
        if not new:
            break
        found.update(new)
        remaining = [m for m in remaining if m not in new]
    lines = [
        f"{module} loads {hit['imported']}" + "".join(f"\n    via {step}" for step in hit["via"])
        for module, hits in sorted(found.items())
        for hit in hits
    ]
    assert not lines, "pure modules must not load the database or web layers:\n" + "\n".join(lines)


# --- import direction, checked statically ---------------------------------------------------------


def _parse(path: Path) -> ast.Module:
    """``path``'s syntax tree. CPython 3.11.7's parser now and then raises "SystemError: AST
    constructor recursion depth mismatch" on valid code (gh-106905, fixed in later releases; it
    failed this test once in a CI run): a second parse of the same text succeeds."""
    text = path.read_text(encoding="utf-8")
    try:
        return ast.parse(text, filename=str(path))
    except SystemError:
        return ast.parse(text, filename=str(path))


def _imports(path: Path, module: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in ``path``, inside functions too, relative ones resolved
    against ``module`` (by default the file's own dotted name).

    ``from api import tools`` yields ``api`` and ``api.tools``: a name imported from a package may
    be a submodule.
    """
    tree = _parse(path)
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# (rule, which files it applies to, the modules they must not import)
RULES: list[tuple[str, Callable[[str], bool], tuple[str, ...]]] = [
    (
        "calibration/ and judge/ are libraries: they never import api",
        lambda rel: rel.startswith(("calibration/", "judge/")),
        ("api",),
    ),
    (
        "only api/tools/ imports api.tools (the serving path never loads the CLI, demo or benches)",
        lambda rel: not rel.startswith("api/tools/"),
        ("api.tools",),
    ),
    (
        # Simulated judges, the in-memory simulation and the baselines (Trust or Escalate) are for
        # measuring: the service must never route on them.
        "only api/tools/ and calibration/lab/ import calibration.lab (benches, baselines; never the service)",
        lambda rel: not rel.startswith(("api/tools/", "calibration/lab/")),
        ("calibration.lab",),
    ),
    (
        # The report's data is pure; the page (HTML, matplotlib) is the API's to draw.
        "calibration/ draws nothing: matplotlib and the report page live in api/",
        lambda rel: rel.startswith("calibration/") and not rel.startswith("calibration/lab/"),
        ("matplotlib",),
    ),
    (
        # Route modules sharing a helper among themselves is still HTTP-only code.
        "only api/main.py imports api.routes",
        lambda rel: rel != "api/main.py" and not rel.startswith("api/routes/"),
        ("api.routes",),
    ),
    (
        # The public client talks to the service over HTTP; typed with the API's own schemas.
        "prelabel/ (the Python client) imports of the server only api.schemas, api.fields, api.vocab",
        lambda rel: rel.startswith("prelabel/"),
        (
            "api.main",
            "api.deps",
            "api.db",
            "api.models",
            "api.settings",
            "api.routes",
            "api.ingest",
            "api.judging",
            "api.calibrate",
            "api.routing",
            "api.review",
            "api.export",
            "api.tools",
            "judge.client",
            "litellm",
            "fastapi",
            "starlette",
            "sqlmodel",
            "sqlalchemy",
        ),
    ),
    (
        "only api/tools/ (the CLI) imports the client: the service never calls itself over HTTP",
        lambda rel: not rel.startswith(("api/tools/", "prelabel/")),
        ("prelabel",),
    ),
    (
        "api/review/ never calls the stages before it (routing calls review's queue hook)",
        lambda rel: rel.startswith("api/review/"),
        ("api.ingest", "api.judging", "api.calibrate", "api.routing"),
    ),
    (
        "models, db, settings, schemas and vocab are the bottom layer",
        lambda rel: (
            rel in {"api/models.py", "api/db.py", "api/settings.py", "api/vocab.py"}
            or rel.startswith("api/schemas/")
        ),
        (
            "api.main",
            "api.deps",
            "api.calibrate.reports",
            "api.calibrate.reports_html",
            "api.calibrate.reports_plots",
            "api.metrics",
            "api.routes",
            "api.ingest",
            "api.judging",
            "api.calibrate",
            "api.routing",
            "api.review",
            "api.export",
            "api.tools",
        ),
    ),
]


def test_imports_follow_the_layers() -> None:
    offences = []
    for path in _sources(*SCANNED):
        rel = _rel(path)
        for rule, applies, banned in RULES:
            if not applies(rel):
                continue
            for line, name in _imports(path):
                if _under(name, banned):
                    offences.append(f"{rel}:{line} imports {name} ({rule})")
    assert not offences, "imports against the layering:\n" + "\n".join(sorted(set(offences)))


# The service's entry points: the app with every route, the worker and the background maintenance.
SERVICE_MODULES = (
    "api.main",
    "api.background",
    "api.judging.worker",
    "api.calibrate.refits",
    "api.calibrate.reports",
    "api.export",
)

_LAB_PROBE = textwrap.dedent(
    """
    import importlib, json, sys

    for name in json.loads(sys.argv[1]):
        importlib.import_module(name)
    lab = [m for m in sys.modules if m == "calibration.lab" or m.startswith("calibration.lab.")]
    print(json.dumps(sorted(lab)))
    """
)


def test_the_service_never_loads_the_lab() -> None:
    """Loaded, not only imported by name: no chain of imports from the service reaches the lab."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _LAB_PROBE, json.dumps(list(SERVICE_MODULES))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == [], f"the service loads lab code: {loaded}"


def test_import_scan_sees_relative_and_function_level_imports(tmp_path: Path) -> None:
    # The rules are only as good as _imports: make sure it does not miss the sneaky forms.
    source = tmp_path / "probe.py"
    source.write_text(
        "from ..judging import worker\n\n\ndef f():\n    from api import tools\n"
        "    importlib.import_module('api.routes.jobs')\n",
        encoding="utf-8",
    )
    names = {name for _, name in _imports(source, module="api.review.probe")}
    assert {"api.judging", "api.judging.worker", "api.tools", "api.routes.jobs"} <= names


# --- tables ---------------------------------------------------------------------------------------


def test_every_table_is_defined_in_api_models() -> None:
    tables = []
    for path in _sources(*SCANNED):
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.ClassDef) and any(
                k.arg == "table" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            ):
                tables.append((_rel(path), node.lineno, node.name))
    assert tables, "found no table=True class: the scan is broken"
    elsewhere = [f"{rel}:{line} class {name}" for rel, line, name in tables if rel != "api/models.py"]
    assert not elsewhere, "tables outside api/models.py (Alembic's env.py only imports that):\n" + "\n".join(
        elsewhere
    )


# In a fresh interpreter: run env.py's own import lines and its target_metadata assignment (env.py
# itself cannot be imported, it migrates on import), copy that metadata before anything else can
# register a table, then migrate a new SQLite database and ask autogenerate for a diff.
_AUTOGENERATE = textwrap.dedent(
    """
    import ast, sys
    from pathlib import Path

    env_path, db_path = sys.argv[1], sys.argv[2]
    tree = ast.parse(Path(env_path).read_text(encoding="utf-8"))
    wanted = [
        node
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        or (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "target_metadata" for t in node.targets)
        )
    ]
    namespace = {}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), env_path, "exec"), namespace)
    seen = namespace["target_metadata"]

    from sqlalchemy import MetaData

    target = MetaData(naming_convention=seen.naming_convention)
    for table in seen.sorted_tables:
        table.to_metadata(target)

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from api.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{db_path}")
    upgrade(engine)
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), target)
    engine.dispose()
    print(f"TABLES {len(target.tables)}")
    for diff in diffs:
        print(f"DIFF {diff!r}")
    """
)


def test_env_py_alone_sees_every_table(tmp_path: Path) -> None:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    result = run_process(
        [
            sys.executable,
            "-c",
            _AUTOGENERATE,
            str(ROOT / "api" / "migrations" / "env.py"),
            str(tmp_path / "t.db"),
        ],
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    diffs = [line.removeprefix("DIFF ") for line in lines if line.startswith("DIFF ")]
    assert not diffs, "autogenerate, with only what env.py imports, proposes:\n" + "\n".join(diffs)
    tables = next(int(line.split()[1]) for line in lines if line.startswith("TABLES "))
    assert tables > 0, "env.py's target_metadata has no tables"


# --- size -----------------------------------------------------------------------------------------


def test_no_module_is_too_long() -> None:
    long = [
        f"{_rel(path)}: {n} lines"
        for path in _sources(*SCANNED)
        if not _rel(path).startswith("api/migrations/")
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, f"split these (over {MAX_MODULE_LINES} lines):\n" + "\n".join(long)


MAX_FUNCTION_LINES = 80


def _long_functions(path: Path) -> Iterator[tuple[int, str, int]]:
    """(line, name, length) of every function or method in ``path`` longer than MAX_FUNCTION_LINES,
    its decorators aside and its docstring included."""
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                yield node.lineno, node.name, length


def test_no_function_is_longer_than_80_lines() -> None:
    """Long functions are split into named steps. Migrations are frozen history and the bench
    commands (api/tools/bench_*.py) are scripts measuring the service, not part of it."""
    long = [
        f"{_rel(path)}:{line} {name}: {length} lines"
        for path in _sources(*SCANNED)
        if not _rel(path).startswith(("api/migrations/", "api/tools/bench_"))
        for line, name, length in _long_functions(path)
    ]
    assert not long, f"split these into named steps (over {MAX_FUNCTION_LINES} lines):\n" + "\n".join(long)


def test_the_function_length_scan_counts_methods_and_async_functions(tmp_path: Path) -> None:
    # The rule is only as good as the scan: a long method or coroutine must not slip through.
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    source = tmp_path / "probe.py"
    source.write_text(f"class C:\n    async def long(self):\n{body}\n    def short(self):\n        pass\n")
    assert [name for _, name, _ in _long_functions(source)] == ["long"]


# Fits and builders take their data plus a few typed settings objects, not a keyword per knob.
MAX_PARAMETERS = 8


def test_no_fit_or_build_function_takes_more_than_8_parameters() -> None:
    wide = []
    for path in _sources("api", "calibration", "judge"):
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.FunctionDef) and node.name.startswith(("fit", "build_")):
                args = node.args
                n = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
                n -= bool(args.args) and args.args[0].arg in ("self", "cls")
                if n > MAX_PARAMETERS:
                    wide.append(f"{_rel(path)}:{node.lineno} {node.name}: {n} parameters")
    assert not wide, f"group these into settings objects (over {MAX_PARAMETERS}):\n" + "\n".join(wide)


def test_no_import_cycles_in_the_pure_libraries() -> None:
    """judge/ and calibration/ import each other's modules one way only (function-level imports
    count: a lazy import is still a cycle a reader has to untangle, as judge.client and
    judge.endpoints once were)."""
    modules = {_module_name(path): path for path in _sources("judge", "calibration")}
    graph = {
        name: {imported for _, imported in _imports(path) if imported in modules and imported != name}
        for name, path in modules.items()
    }
    cycles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        for nxt in sorted(graph[name]):
            if nxt in trail:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif len(trail) < len(graph):
                visit(nxt, [*trail, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, f"import cycles: {sorted({' -> '.join(c) for c in cycles})[:5]}"
