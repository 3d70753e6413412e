"""Imports point one way: data -> models -> {training, pipeline} -> evaluation -> cli
(issue 31).

Each check imports in a fresh interpreter, so that modules this test process (or another
test) already imported cannot hide an edge.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from synthmed.repository.commands import INSTALL_EXTRA

# Layers that sampling must never load: training code, the evaluation, the web service.
NOT_FOR_SAMPLING = ("synthmed.training", "synthmed.evaluation", "synthmed.repository", "fastapi")


def imported_after(*modules: str) -> list[str]:
    """Names of every module loaded by importing ``modules`` in a new Python process."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def under(names: list[str], prefixes: tuple[str, ...]) -> list[str]:
    """The ``names`` that are one of ``prefixes`` or inside one of them."""
    return [n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)]


@pytest.mark.parametrize("module", ["synthmed.pipeline", "synthmed.generation"])
def test_sampling_imports_no_training_evaluation_or_web_stack(module: str) -> None:
    assert under(imported_after(module), NOT_FOR_SAMPLING) == []


def test_models_import_nothing_above_them() -> None:
    names = imported_after(
        "synthmed.models.conditioning",
        "synthmed.models.loading",
        "synthmed.models.refiner",
        "synthmed.models.segmenter",
        "synthmed.models.tree_repair",
        "synthmed.models.vessel_geometry",
    )
    above = ("synthmed.training", "synthmed.pipeline", "synthmed.generation", "synthmed.evaluation")
    assert under(names, above) == []


def test_training_imports_no_evaluation() -> None:
    """Stage II's vessel judge trains the segmenter of models/segmenter.py, not the
    evaluation's: training sits below evaluation."""
    names = imported_after(
        "synthmed.training.api",
        "synthmed.training.geometry",
        "synthmed.training.judge",
        "synthmed.training.texture",
    )
    assert under(names, ("synthmed.evaluation",)) == []


def test_evaluation_does_not_import_training() -> None:
    names = imported_after("synthmed.evaluation.suite", "synthmed.evaluation.commands")
    assert under(names, ("synthmed.training",)) == []


def test_cli_imports_no_web_stack() -> None:
    """The parser is built without the repository extra's packages (see test_cli_e2e)."""
    web = ("fastapi", "uvicorn", "starlette", "jinja2", "sqlalchemy", "httpx")
    assert under(imported_after("synthmed.cli"), web) == []


# The repository extra's packages (pyproject.toml), and starlette, which fastapi brings.
WEB_STACK = ("fastapi", "starlette", "uvicorn", "jinja2", "sqlalchemy", "httpx")


def test_cli_without_the_repository_extra(tmp_path) -> None:
    """With the web stack missing (``sys.modules[name] = None`` makes ``import name`` fail),
    each repository command exits 2 with one line naming the extra, and the other commands
    still run."""
    code = (
        "import json, sys\n"
        f"for name in {list(WEB_STACK)!r}:\n"
        "    sys.modules[name] = None\n"
        "from synthmed.cli import main\n"
        f"tmp = {str(tmp_path)!r}\n"
        "codes = [\n"
        "    main(['serve', '--db', tmp + '/c.sqlite', '--storage', tmp + '/files']),\n"
        "    main(['publish', tmp, '--server', 'http://127.0.0.1:9', '--token', 't',\n"
        "          '--title', 'T', '--license', 'CC0-1.0']),\n"
        "    main(['token', 'list', '--db', tmp + '/c.sqlite']),\n"
        "    main(['prepare', 'phantom', '--res', '32', '--n', '2', '--out', tmp + '/data']),\n"
        "]\n"
        "print(json.dumps(codes))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [2, 2, 2, 0]
    errors = [line for line in done.stderr.splitlines() if line.startswith("synthmed: error:")]
    assert [e.split(" needs ")[0] for e in errors] == [
        f"synthmed: error: synthmed {c}" for c in ("serve", "publish", "token")
    ]
    assert all(e.endswith(INSTALL_EXTRA) for e in errors)
    assert "pip install -e '.[repository]'" in INSTALL_EXTRA  # from a clone, where most run it
    assert (tmp_path / "data" / "dataset.json").is_file()
    assert not (tmp_path / "c.sqlite").exists()  # nothing was started


@pytest.mark.parametrize("entry", ["python -m synthmed.bench", "synthmed bench"])
def test_bench_repository_without_the_extra(tmp_path, entry: str) -> None:
    """``--repository`` without the web stack: one line naming the extra, exit code 2, no
    traceback, whether run as ``python -m synthmed.bench`` or through ``synthmed bench``."""
    module, args = ("synthmed.bench", []) if entry.endswith(".bench") else ("synthmed", ["bench"])
    out = tmp_path / "bench.json"
    code = (
        "import runpy, sys\n"
        f"for name in {list(WEB_STACK)!r}:\n"
        "    sys.modules[name] = None\n"
        f"sys.argv = ['x', *{args!r}, '--repository', '--out', {str(out)!r}]\n"
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "synthmed: error: synthmed bench --repository needs the repository extra "
        f"(fastapi is not installed): {INSTALL_EXTRA}"
    ]
    assert done.stdout == "" and not out.exists()
