"""Laboratory code: simulated judges and files for measuring the gate. Benchmarks and tests
import it; the service never does (tests/test_layering.py)."""
