"""Stage 1, ingest: jobs of pairs and human labels, stored all or nothing, idempotent by client id.

* :mod:`api.ingest.store` parses and stores a job or a batch of labels (JSON or NDJSON).
* :mod:`api.ingest.pool` runs job posts in processes beside the API's (SQLite).
"""
