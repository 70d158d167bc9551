"""Stage 2, judge: pairs claimed, the panel called in each judge's orders, judgments stored.

* :mod:`api.judging.worker` claims pending pairs and judges them; the one loop that calls judges.
* :mod:`api.judging.claims` claims pairs under leases, renews them, reads cached verdicts.
* :mod:`api.judging.checks` checks a project's judges when the project is created.
* :mod:`api.judging.injection_recheck` judges a suspicious pair again without the suspicious span.
"""
