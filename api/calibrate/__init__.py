"""Stage 3, calibrate: the gate refitted from human labels, its versions, monitoring, the report.

* :mod:`api.calibrate.refits` refits the gate and re-routes pairs; ``maintain`` (what the
  background maintenance runs) refits projects with enough new labels and checks drift.
* :mod:`api.calibrate.kill_switch` the drift test on audits that closes an open gate.
* :mod:`api.calibrate.gate_labels` which human labels may calibrate (the agreement gate).
* :mod:`api.calibrate.versions` the stored calibration versions.
* :mod:`api.calibrate.reports` the report's data; :mod:`api.calibrate.reports_html` and
  :mod:`api.calibrate.reports_plots` its page and figures.
"""
