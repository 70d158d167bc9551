"""The dataset out: final rows streamed from the database, written in the ecosystem's formats.

* :mod:`api.export.rows` streams a project's pairs with their final labels, in chunks.
* :mod:`api.export.dpo`, :mod:`api.export.hf`, :mod:`api.export.label_studio`,
  :mod:`api.export.argilla` write one format each.
* :mod:`api.export.manifest` counts what was written and renders the manifest and dataset card.
* :mod:`api.export.snapshots` runs an export (gates, writer, manifest) and stores it as an
  immutable, numbered :class:`api.models.Export`; it also diffs two snapshots.
* :mod:`api.export.leakage` and :mod:`api.export.promotion` are the gates a train export passes.

Heavy libraries (``datasets``, ``pyarrow``) load only inside the writer that needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, get_args

from api.vocab import ExportFormat

if TYPE_CHECKING:  # the writers' types only: importing them here would load every format
    from api.export.manifest import Counts
    from api.export.rows import DatasetDescription, ExportRow, RowHashes

FORMATS: tuple[str, ...] = get_args(ExportFormat)


class FormatModule(Protocol):
    """What each format module provides."""

    def write(
        self,
        rows: Iterable[ExportRow],
        directory: Path,
        hashes: RowHashes,
        counts: Counts,
        about: DatasetDescription,
    ) -> list[str]:
        """Write the rows under ``directory``; the files and folders written."""
        ...

    def final_labels(self, directory: Path) -> Iterator[tuple[int, str | None]]:
        """(pair id, final label) of every row it wrote to ``directory`` (snapshot diffs)."""
        ...


def format_module(name: str) -> FormatModule:
    """The module of export format ``name``, loaded when first asked for (``hf`` loads
    ``datasets`` and ``pyarrow``). ValueError for a name that is no format."""
    if name not in FORMATS:
        raise ValueError(f"unknown export format {name!r}: one of {', '.join(FORMATS)}")
    module: FormatModule = importlib.import_module(f"api.export.{name.replace('-', '_')}")
    return module
