"""`prelabel` is a click application: every command documents itself and bad input is a usage error."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from api.tools.cli import main, prelabel

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "api" / "sample_data" / "llmbar_sample.jsonl"
COMMANDS = ["serve", "worker", "review", "demo", "bench", "calibrate", "db", "audit", "export",
            "project", "job", "labels", "report"]  # fmt: skip
BENCHMARKS = ["throughput", "replay", "simulate", "queue", "load", "export", "reviewers", "injection", "live"]


def _walk(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found.extend(_walk(command, (*path, name)))
    return found


def _first_doc_line(command: click.Command) -> str:
    doc = inspect.getdoc(command.callback)
    assert doc, f"{command.name} has no docstring"
    return doc.splitlines()[0]


def _flat(text: str) -> str:
    """Help text with its wrapping undone, so a sentence can be looked up whatever the width."""
    return " ".join(text.split())


def test_the_group_documents_itself_and_lists_every_command() -> None:
    result = CliRunner().invoke(prelabel, ["--help"])
    assert result.exit_code == 0, result.output
    assert _flat(_first_doc_line(prelabel)) in _flat(result.output)
    listed = result.output.split("Commands:")[1].split()
    assert set(COMMANDS) <= set(listed)
    assert sorted(prelabel.commands) == sorted(COMMANDS)
    assert isinstance(prelabel.commands["bench"], click.Group)
    assert sorted(prelabel.commands["bench"].commands) == sorted(BENCHMARKS)


@pytest.mark.parametrize(
    ("path", "command"), _walk(prelabel), ids=[" ".join(path) for path, _ in _walk(prelabel)]
)
def test_every_command_has_help_from_its_docstring(path: tuple[str, ...], command: click.Command) -> None:
    result = CliRunner().invoke(prelabel, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: prelabel {' '.join(path)} ")
    assert _flat(_first_doc_line(command)) in _flat(result.output)
    for param in command.params:  # every option explains itself
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help"


def test_the_argparse_era_flags_are_all_there() -> None:
    result = CliRunner().invoke(prelabel, ["bench", "replay", "--help"])
    for flag in ("--data", "--judges", "--target-agreement", "--delta", "--calibration-fraction", "--splits",
                 "--seed", "--shift-to", "--audit-rate", "--n-min", "--order-sensitive-judges", "--cascade",
                 "--json"):  # fmt: skip
        assert flag in result.output, flag
    assert "--no-worker" in CliRunner().invoke(prelabel, ["serve", "--help"]).output
    assert "--until-idle" in CliRunner().invoke(prelabel, ["worker", "--help"]).output
    assert "--database-url" in CliRunner().invoke(prelabel, ["bench", "queue", "--help"]).output


def test_a_bad_option_is_a_usage_error() -> None:
    result = CliRunner().invoke(prelabel, ["bench", "queue", "--no-such-flag"])
    assert result.exit_code == 2
    assert "Usage: prelabel bench queue" in result.output and "No such option" in result.output


def test_main_returns_exit_codes_instead_of_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "not-a-number"]) == 2
    assert "Invalid value for '--port'" in capsys.readouterr().err
    assert main(["db", "--help"]) == 0
    assert "Usage: prelabel db" in capsys.readouterr().out


def test_the_cli_imports_nothing_heavy() -> None:
    heavy = {"api.main", "pandas", "calibration", "uvicorn"}
    probe = f"import sys, api.tools.cli; print(sorted({heavy!r} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_simulate_prints_the_summary_on_the_bundled_sample() -> None:
    args = ["bench", "simulate", str(SAMPLE), "--splits", "2", "--target", "0.8", "--per-split",
            "--judges", "gpt-4/vanilla_norules,gpt-3.5-turbo/vanilla_norules"]  # fmt: skip
    result = CliRunner().invoke(prelabel, args)
    assert result.exit_code == 0, result.output
    table, summary = result.output.split("\n{", 1)
    assert "coverage" in table and "reason" in table
    summary = json.loads("{" + summary)
    assert summary["splits"] == 2.0 and summary["gold_labels_used_mean"] == 100.0
    assert summary["judge_calls_per_pair_mean"] == 4.0  # two judges, both orders: the panel was parsed
    assert 0.0 <= summary["coverage_mean"] <= 1.0


def test_simulate_reports_incompatible_settings_without_a_traceback() -> None:
    args = ["bench", "simulate", str(SAMPLE), "--splits", "1", "--mode", "split",
            "--cascade", "gpt-3.5-turbo/vanilla_norules", "--cascade", "gpt-4/vanilla_norules"]  # fmt: skip
    result = CliRunner().invoke(prelabel, args)
    assert result.exit_code == 1 and "Error: the cascade supports mode='crossfit' only" in result.output
    assert "Traceback" not in result.output
