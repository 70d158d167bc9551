"""prelabel's Python client: ``from prelabel import Client, AsyncClient``.

A thin, typed wrapper over the HTTP API (httpx); results are the API's own response models.
It never imports the server: only the pydantic schemas of ``api.schemas``.

* ``client.py`` / ``aclient.py``: :class:`Client` and :class:`AsyncClient`, one attribute per
  resource: ``projects``, ``jobs``, ``labels``, ``calibration``, ``review``, ``exports``.
* ``convert.py``: importers (list of dicts, DataFrame, ``datasets.Dataset``, JSONL, parquet,
  DPO / HH-RLHF) to the pairs and labels the API reads, pure functions.
* ``errors.py``: :class:`PrelabelError` (status code and the API's message), :class:`JobStalled`.
"""

from prelabel.aclient import AsyncClient
from prelabel.client import Client
from prelabel.errors import JobStalled, PrelabelError

__all__ = ["AsyncClient", "Client", "JobStalled", "PrelabelError"]
