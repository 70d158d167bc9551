"""Stage 4, route: pure routing rules, and the one writer of decisions.

* :mod:`api.routing.route` decides auto-accept, review or incident per pair, every reason kept.
* :mod:`api.routing.decisions` writes decisions (the only writer of that table).
"""
