"""One list of export formats: the API schema, the CLI and the snapshots all read
``api.export.ExportFormat``, and every format is a module with the same two functions."""

from __future__ import annotations

import inspect
from pathlib import Path

import click
import pytest

from api.db import make_engine
from api.export import FORMATS, format_module
from api.main import create_app
from api.tools.export_cli import export
from tests.helpers import fast_settings, sqlite_url_for


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_is_a_module_with_a_writer_and_a_reader(name: str) -> None:
    module = format_module(name)
    writer_parameters = list(inspect.signature(module.write).parameters)
    assert writer_parameters == ["rows", "directory", "hashes", "counts", "about"]
    assert list(inspect.signature(module.final_labels).parameters) == ["directory"]


def test_a_name_that_is_no_format_is_refused() -> None:
    for name in ("DPO", "label_studio", "csv", ""):
        with pytest.raises(ValueError, match="unknown export format"):
            format_module(name)


def test_the_api_and_the_cli_offer_exactly_the_formats(tmp_path: Path) -> None:
    url = sqlite_url_for(tmp_path / "api.db")
    spec = create_app(fast_settings(url), make_engine(url), run_worker=False).openapi()
    assert tuple(spec["components"]["schemas"]["ExportCreate"]["properties"]["format"]["enum"]) == FORMATS
    option = next(p for p in export.params if p.name == "export_format")
    assert isinstance(option.type, click.Choice) and tuple(option.type.choices) == FORMATS
