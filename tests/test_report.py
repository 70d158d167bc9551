"""The calibration report: built from LLMBar dev data (real judges, human gold), and degenerate cases.

The LLMBar report uses a deliberately simple confidence: the share of the 4 main judges' 8
verdicts (both orders) that agree with their majority side. It is not fitted on the labels, so it
is out-of-sample on all 566 pairs. One example page is written to /tmp/report_example.html.
"""

from __future__ import annotations

import base64
import doctest
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from api.calibrate import reports_html
from api.calibrate.reports_html import render_report_html
from calibration import report as report_module
from calibration.metrics import clopper_pearson_interval, coverage_agreement_curve
from calibration.report import CalibrationReport, Monitoring, PanelEvidence, ScoredLabels, build_report
from judge.verdicts import to_side
from tests.waiting import run_process

LLMBAR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "replay" / "llmbar_dev.jsonl"
MAIN_JUDGES = [f"{m}/vanilla_norules" for m in ("gpt-4", "gpt-3.5-turbo", "palm-2", "llama-2-70b-chat")]
SECTIONS = [
    "gate",
    "labels",
    "reliability",
    "coverage",
    "judges",
    "confusion",
    "audits",
    "versions",
    "guarantee",
]
PNG_RE = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')
EXAMPLE = Path("/tmp/report_example.html")


def _fixed_sequence(conf: np.ndarray, ok: np.ndarray, target: float, delta: float) -> dict:
    """Minimal fixed-sequence threshold choice, enough to give the report realistic gate numbers."""
    thresholds, coverage, agreement = coverage_agreement_curve(conf, ok)
    chosen = None
    for t, cov, agr in zip(thresholds, coverage, agreement, strict=True):
        n = int(round(cov * conf.size))
        lower = clopper_pearson_interval(int(round(agr * n)), n, alpha=2 * delta)[0]
        if n < 30:
            continue  # too few to ever pass; not a test (does not end the sequence)
        if lower < target:
            break
        chosen = (float(t), float(cov), lower, n)
    if chosen is None:
        return {
            "state": "closed",
            "reason": "No threshold reaches the target agreement.",
            "n_labels": int(conf.size),
        }
    t, cov, lower, _ = chosen
    return {
        "state": "open",
        "reason": f"Agreement lower bound {lower:.1%} at threshold {t:.3f} meets the {target:.0%} target.",
        "threshold": t,
        "target_agreement": target,
        "delta": delta,
        "agreement_lower_bound": lower,
        "expected_coverage": cov,
        "n_labels": int(conf.size),
        "label_sources": [
            {
                "source": "calibration_sample",
                "n": int(conf.size),
                "used": True,
                "why": "random sample of pairs",
            },
            {"source": "audit", "n": 0, "used": True, "why": "random share of auto-accepted pairs"},
            {
                "source": "review",
                "n": 212,
                "used": False,
                "why": "excluded: reviewers see uncertain pairs (selection bias)",
            },
        ],
    }


@pytest.fixture(scope="module")
def llmbar_report() -> CalibrationReport:
    if not LLMBAR.exists():
        pytest.skip(f"real data not available at {LLMBAR}")
    rows = [json.loads(line) for line in LLMBAR.open(encoding="utf-8")]
    judgments = pd.DataFrame([{"pair_id": r["id"], **j} for r in rows for j in r["judgments"]])
    gold = {r["id"]: r["gold"] for r in rows}

    main = judgments[judgments["judge"].isin(MAIN_JUDGES)]
    conf, pred = [], []
    for r in rows:
        sides = [to_side(v) for v in main.loc[main["pair_id"] == r["id"], "verdict"]]
        votes = Counter(s for s in sides if s is not None)
        side, count = max(sorted(votes.items()), key=lambda kv: kv[1]) if votes else ("A", 0)
        pred.append(side)
        conf.append(count / len(MAIN_JUDGES) / 2)  # invalid verdicts count against confidence
    conf_a, ok = np.array(conf), np.array(pred) == np.array([r["gold"] for r in rows])

    gate = _fixed_sequence(conf_a, ok, target=0.85, delta=0.05)
    gpt4 = judgments[(judgments["judge"] == "gpt-4/vanilla_norules") & (judgments["verdict"] != "invalid")]

    # Audits: a random tenth of the pairs that the gate would auto-accept, one every 6 hours.
    rng = np.random.default_rng(0)
    accepted = np.flatnonzero(conf_a >= gate.get("threshold", 2.0))
    audited = rng.choice(accepted, size=min(60, accepted.size), replace=False)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    versions = [
        {
            "version": "v1",
            "created_at": "2024-04-01",
            "state": "closed",
            "threshold": None,
            "target_agreement": 0.85,
            "agreement_lower_bound": None,
            "expected_coverage": 0.0,
            "n_labels": 120,
            "note": "too few labels",
        },
        {
            "version": "v2",
            "created_at": "2024-04-28",
            "state": gate["state"],
            "threshold": gate.get("threshold"),
            "target_agreement": 0.85,
            "agreement_lower_bound": gate.get("agreement_lower_bound"),
            "expected_coverage": gate.get("expected_coverage"),
            "n_labels": len(rows),
            "note": "LLMBar dev replay",
        },
    ]
    return build_report(
        project="LLMBar replay <demo>",
        calibration_version="v2",
        gate=gate,
        scores=ScoredLabels(
            conf_a,
            ok,
            note="Confidence = share of the 4 main judges' 8 verdicts that agree with the majority.",
        ),
        panel=PanelEvidence(
            judgments=main,
            gold=gold,
            confusion_true=gpt4["pair_id"].map(gold).to_numpy(),
            confusion_pred=gpt4["verdict"].to_numpy(),
            confusion_compared="gpt-4/vanilla_norules, both orders, vs human gold",
        ),
        monitoring=Monitoring(
            audit_timestamps=[start + timedelta(hours=6 * i) for i in range(audited.size)],
            audit_agree=ok[audited],
            kill_switch={
                "tripped": False,
                "rule": "close the gate if the audit 95% upper bound drops below the target",
            },
        ),
        versions=versions,
        generated_at="2024-05-16T12:00:00+00:00",
    )


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in PNG_RE.findall(page)]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(report_module).failed == 0
    assert doctest.testmod(reports_html).failed == 0


def test_llmbar_report_is_json_and_has_expected_numbers(llmbar_report: CalibrationReport) -> None:
    text = json.dumps(llmbar_report, allow_nan=False)  # the service stores it as JSON
    assert json.loads(text) == llmbar_report
    gate = llmbar_report["gate"]
    assert gate["state"] == "open" and gate["agreement_lower_bound"] >= 0.85
    assert 0.3 < gate["expected_coverage"] < 0.9
    assert llmbar_report["reliability"]["ece"] is not None and 0 <= llmbar_report["reliability"]["ece"] < 0.2
    judges = {j["judge"]: j for j in llmbar_report["judges"]}
    assert set(judges) == set(MAIN_JUDGES)
    assert judges["gpt-4/vanilla_norules"]["swap_consistency"] == pytest.approx(0.86, abs=0.005)
    conf = llmbar_report["confusion"]
    assert conf is not None and sum(map(sum, conf["matrix"])) == 1132 - 11  # 11 invalid gpt-4 verdicts
    assert conf["kappa"] == pytest.approx(judges["gpt-4/vanilla_norules"]["kappa"])


def test_llmbar_report_renders_all_sections(llmbar_report: CalibrationReport) -> None:
    page = render_report_html(json.loads(json.dumps(llmbar_report)))
    EXAMPLE.write_text(page, encoding="utf-8")
    for section in SECTIONS:
        assert f'id="{section}"' in page
    assert "How this guarantee works and where it breaks" in page
    assert "Gate OPEN" in page and "Not enough data" not in page
    images = _images(page)
    assert len(images) == 5  # reliability, coverage, judges, confusion, audits
    assert all(img.startswith(b"\x89PNG") for img in images)
    # Self-contained: no external resources.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    # User-supplied text is escaped.
    assert "LLMBar replay &lt;demo&gt;" in page and "<demo>" not in page
    assert "selection bias" in page and "gpt-4/vanilla_norules" in page


def test_empty_report_renders_not_enough_data() -> None:
    empty = build_report(project="new project", calibration_version="v0")
    assert json.loads(json.dumps(empty, allow_nan=False)) == empty
    page = render_report_html(empty)
    assert "Gate CLOSED" in page
    assert page.count("Not enough data") >= 6
    assert _images(page) == []
    for section in SECTIONS:
        assert f'id="{section}"' in page
    # Even a bare dict renders.
    assert "Gate CLOSED" in render_report_html({})


def test_degenerate_inputs() -> None:
    tiny = build_report(
        project="p",
        calibration_version="v1",
        gate={"state": "open", "reason": "r", "threshold": 0.99, "target_agreement": 0.9, "delta": 0.1},
        # One distinct confidence, all correct: one-class data.
        scores=ScoredLabels(confidence=[0.7, 0.7, 0.7], correct=[True, True, True]),
        panel=PanelEvidence(confusion_true=["A"], confusion_pred=["A"]),  # kappa undefined -> None
        # An unparseable timestamp: plotted by audit number.
        monitoring=Monitoring(audit_timestamps=["not a time"], audit_agree=[False]),
    )
    assert tiny["confusion"] is not None and tiny["confusion"]["kappa"] is None
    json.dumps(tiny, allow_nan=False)
    page = render_report_html(tiny)
    assert "Only 3 labelled pairs" in page
    assert len(_images(page)) == 4  # reliability, coverage, confusion, audits (no judges)


def test_threshold_result_dict_is_accepted() -> None:
    # The shape of calibration.threshold.ThresholdResult.to_dict(): risk terms, "open" as a bool.
    result = {"threshold": 0.8, "open": True, "reason": "ok", "n_used": 400, "n_accepted": 200,
              "agreement_lower_bound": 0.91, "expected_coverage": 0.5, "alpha": 0.1, "delta": 0.05,
              "curve": {"threshold": [0.8]}}  # fmt: skip
    gate = build_report(project="p", calibration_version="v1", gate=result)["gate"]
    assert gate["state"] == "open" and gate["target_agreement"] == pytest.approx(0.9)
    assert gate["n_labels"] == 400 and "curve" not in gate


def test_mismatched_audits_raise() -> None:
    with pytest.raises(ValueError):
        audits = Monitoring(audit_timestamps=["2024-01-01"], audit_agree=[])
        build_report(project="p", calibration_version="v", monitoring=audits)


def test_screenshot_if_chromium(tmp_path: Path, llmbar_report: CalibrationReport) -> None:
    """Renders in a real browser when Debian chromium is present (not installed by this project)."""
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not installed")
    page = tmp_path / "report.html"
    page.write_text(render_report_html(llmbar_report), encoding="utf-8")
    shot = tmp_path / "report.png"
    shot_taken = run_process(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--screenshot={shot}", "--window-size=1200,3000",
         page.as_uri()],
    )  # fmt: skip
    assert shot_taken.returncode == 0, shot_taken.stderr[-3000:]
    assert shot.exists() and shot.stat().st_size > 10_000


def test_large_inputs_render_quickly() -> None:
    import time

    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 50_000)
    start = time.process_time()  # CPU time: a busy machine does not stretch it
    big = build_report(
        project="big",
        calibration_version="v9",
        gate={"state": "open", "reason": "r", "threshold": 0.9, "target_agreement": 0.9, "delta": 0.05},
        scores=ScoredLabels(confidence=conf, correct=rng.uniform(size=conf.size) < conf),
        monitoring=Monitoring(
            audit_timestamps=pd.date_range("2024-01-01", periods=5_000, freq="h", tz="UTC")
            .to_pydatetime()
            .tolist(),
            audit_agree=rng.uniform(size=5_000) < 0.9,
        ),
    )
    page = render_report_html(big)
    assert len(_images(page)) == 3
    assert time.process_time() - start < 20
