"""Laboratory code: simulated judges and files (``judges``), the in-memory gate simulation
(``simulate``), the coverage-gain study (``gain``) and the Trust-or-Escalate baseline (``toe``).
Benchmarks and tests import it; the service never does (tests/test_layering.py)."""
