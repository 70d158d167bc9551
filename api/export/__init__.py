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

FORMATS: tuple[str, ...] = ("dpo", "hf", "label-studio", "argilla")
