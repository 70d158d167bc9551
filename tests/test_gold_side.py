"""The predicted side comes from the judges, whatever side the gold labels favour.

A client that always shows the chosen response first (the HH-RLHF convention) imports gold
labels that are all "A". The gold labels must only calibrate how often humans agree with the
panel; they must never pick the side: no pair may be auto-accepted against the panel's own
strict majority, the judges' label must stay the judges' side, and the report must warn that
the gold set is one-sided. Through the service (replay judges on the LLMBar dev file, its
pairs shown with A and B swapped where the orientation asks), and on the pure calibrator.
"""

from __future__ import annotations

import dataclasses
import doctest
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calibration import calibrator as calibrator_module
from calibration.calibrator import PairCalibrator, panel_sides
from calibration.features import build_features
from calibration.gate import fit_gate, one_sided_gold
from calibration.settings import GateSettings
from judge.recorded import RecordedPair, load_recorded
from judge.verdicts import majority_side, side
from tests.helpers import LLMBAR, fold_wal, run_worker, served_copy
from tests.test_calibration_service import post_labels, results, setup_project

pytestmark = pytest.mark.skipif(not LLMBAR.exists(), reason=f"shared data missing: {LLMBAR}")
SWAP = {"A": "B", "B": "A", "tie": "tie"}
N_GOLD = 300

# Which pairs are shown swapped (response B first), given (position in the file, pair).
Orientation = Callable[[int, RecordedPair], bool]
ORIENTATIONS: dict[str, Orientation] = {
    "all_A": lambda i, p: p.gold == "B",  # the chosen response always first
    "all_B": lambda i, p: p.gold == "A",
    # 95 / 5: every 20th pair keeps B as the preferred one.
    "95_5": lambda i, p: (p.gold == "B") != (i % 20 == 0),
}


def oriented(pairs: list[RecordedPair], orientation: Orientation) -> list[RecordedPair]:
    """The pairs with A and B swapped where ``orientation`` says so (gold swapped with them).

    The replay judges answer a swapped pair from the recording of the other display order:
    they key on the texts shown, so a judge's verdict follows the response, not the letter.
    """
    out = []
    for i, p in enumerate(pairs):
        if orientation(i, p):
            p = dataclasses.replace(
                p,
                id=f"{p.id}-swapped",
                response_a=p.response_b,
                response_b=p.response_a,
                gold=SWAP.get(p.gold or "", p.gold),
            )
        out.append(p)
    return out


def strict_majority(verdicts: list[str | None]) -> str | None:
    """The side more valid verdicts name than each other answer (None: split, or nothing)."""
    counts = Counter(side(v) for v in verdicts if v is not None and side(v) is not None)
    if not counts:
        return None
    (top, n), *rest = counts.most_common()
    return None if rest and rest[0][1] == n else top


@pytest.fixture(scope="module")
def recorded() -> list[RecordedPair]:
    pairs = load_recorded(LLMBAR)
    random.Random(0).shuffle(pairs)  # the file is ordered by subset; a gold sample must be random
    return [p for p in pairs if p.gold in ("A", "B")]


@pytest.fixture(scope="module")
def judged_db(
    migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory, recorded: list[RecordedPair]
) -> tuple[Path, dict[str, int]]:
    """One project per orientation, every pair judged (the gate closed), built once."""
    path = tmp_path_factory.mktemp("gold-side") / "judged.db"
    projects = {}
    with served_copy(migrated_sqlite, path) as (client, engine, settings):
        for name, orientation in ORIENTATIONS.items():
            projects[name] = setup_project(client, oriented(recorded, orientation), name=name)
        run_worker(engine, settings)
    fold_wal(path)
    return path, projects


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_one_sided_gold_never_accepts_against_the_panel_and_warns(
    name: str, judged_db: tuple[Path, dict[str, int]], recorded: list[RecordedPair], tmp_path: Path
) -> None:
    path, projects = judged_db
    pairs = oriented(recorded, ORIENTATIONS[name])
    gold_part = pairs[:N_GOLD]
    shares = Counter(p.gold for p in gold_part)
    assert max(shares.values()) / N_GOLD >= 0.9, shares  # the set is one-sided as intended
    with served_copy(path, tmp_path / "test.db") as (client, _, _):
        project = projects[name]
        assert post_labels(client, project, gold_part).status_code == 201
        version = client.post(f"/v1/projects/{project}/calibration/refit").json()
        # Fitted on the judges' side, the gate opens (the old side model, a constant on one-class
        # gold, opened at 0.992 on all-A and closed at agreement 0.000 on all-B).
        assert version["state"] == "open", version["reason"]
        assert "gold labels are one-sided" in version["reason"]
        rows = results(client, project)
        accepted = [r for r in rows if r["route"] == "auto_accept"]
        assert len(accepted) > 100
        against, judges_side_kept = 0, 0
        for row in rows:
            panel = strict_majority([j["verdict"] for j in row["judgments"]])
            if panel is None:
                continue
            if row["route"] == "auto_accept" and row["chosen"] != panel:
                against += 1
            # The judges' label is the judges' side, accepted or not.
            assert side(row["judge_label"]) == panel, row
            judges_side_kept += 1
        assert against == 0 and judges_side_kept > 0.8 * len(rows)
        # On pairs no label saw, the accepted side agrees with the humans as guaranteed.
        gold = {p.id: p.gold for p in pairs}
        fresh = [r for r in accepted if r["client_id"] not in {p.id for p in gold_part}]
        agreement = sum(r["chosen"] == gold[r["client_id"]] for r in fresh) / len(fresh)
        assert agreement >= 0.8, agreement
        state = client.get(f"/v1/projects/{project}/calibration").json()
        assert any("one-sided" in w and "randomise" in w for w in state["gate"]["warnings"])
        html = client.get(f"/v1/projects/{project}/calibration/report.html").text
        assert "Warning: gold labels are one-sided" in html


# --- the pure calibrator ---------------------------------------------------------------------


def _panel_data(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Three judges of accuracy 0.9 / 0.75 / 0.6 in both orders; truth A or B at random."""
    rng = np.random.default_rng(seed)
    rows, truth = [], {}
    for i in range(n):
        t = "A" if rng.uniform() < 0.5 else "B"
        truth[i] = t
        for judge, acc in (("strong", 0.9), ("mid", 0.75), ("weak", 0.6)):
            for order in ("ab", "ba"):
                rows.append((i, judge, order, t if rng.uniform() < acc else SWAP[t]))
    return pd.DataFrame(rows, columns=["pair_id", "judge", "order", "verdict"]), pd.Series(truth)


def _mirror(df: pd.DataFrame, truth: pd.Series, flip: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Swap A and B on the pairs where ``flip``: verdicts and display orders follow the texts."""
    f = df["pair_id"].map(flip)
    df = df.assign(
        verdict=np.where(f, df["verdict"].map(SWAP), df["verdict"]),
        order=np.where(f, df["order"].map({"ab": "ba", "ba": "ab"}), df["order"]),
    )
    return df, truth.where(~flip, truth.map(SWAP))


def test_one_class_gold_still_learns_the_judges_and_keeps_their_side() -> None:
    df, truth = _panel_data(400, seed=3)
    all_a_df, all_a = _mirror(df, truth, truth == "B")
    assert set(all_a) == {"A"}
    fs = build_features(all_a_df)
    cal = PairCalibrator(signed=fs.signed, feature_names=fs.feature_names, random_state=0).fit(fs.X, all_a)
    weights = np.asarray(cal.params_["side"]["direction"]["coef"])
    assert weights.max() > 0.1  # not the constant a one-class fit used to be
    predicted = cal.predict_side(fs.X)
    panel = panel_sides(fs.X, fs.feature_names)
    assert panel is not None
    strict = np.array([p is not None for p in panel])
    assert (predicted[strict] == panel[strict]).all()
    assert {"A", "B"} <= set(predicted.tolist())  # the judges' B majorities stay B
    # Unanimous pairs are the most confident ones.
    unanimous = fs.frame()["panel|abs_net_votes"].to_numpy() == 6
    assert cal.confidence(fs.X)[unanimous].min() > np.median(cal.confidence(fs.X))


def test_mirroring_changes_nothing_on_two_class_gold() -> None:
    """Mirrored rows have the same likelihood as their pair: with C halved the fit is the same."""
    df, truth = _panel_data(300, seed=5)
    fs = build_features(df)
    cal = PairCalibrator(signed=fs.signed, random_state=0, monotone=False, human_noise=False).fit(fs.X, truth)
    from sklearn.linear_model import LogisticRegression

    Z = fs.X[:, fs.signed]
    sd = np.sqrt((Z**2).mean(axis=0))
    sd = np.where(sd > 1e-9, sd, 1.0)
    plain = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky", max_iter=200)
    plain.fit(Z / sd, (truth.to_numpy() == "A").astype(float))
    assert np.allclose(cal.params_["side"]["direction"]["coef"], plain.coef_[0], atol=1e-4)


def test_orientation_of_the_gold_does_not_move_the_accepted_side() -> None:
    """All-A and all-B gold on the same pairs: a mirror image, so the gates agree pair by pair
    (in their own A/B terms), and neither accepts a pair against the panel."""
    df, truth = _panel_data(400, seed=11)
    fitted = {}
    for name, flip in (("all_A", truth == "B"), ("all_B", truth == "A")):
        mdf, y = _mirror(df, truth, flip)
        fs = build_features(mdf, judges=["mid", "strong", "weak"])
        gate = fit_gate(fs, y.iloc[:250], GateSettings(alpha=0.15, delta=0.1, n_min=50))
        assert gate.open, gate.reason
        accepted = gate.accept(fs)
        sides = gate.predict_side(fs)
        panel = panel_sides(fs.X, fs.feature_names)
        assert panel is not None
        assert not any(p is not None and p != s for p, s, a in zip(panel, sides, accepted, strict=True) if a)
        # Back in the truth's own terms:
        back = np.where(flip.to_numpy(), pd.Series(sides).map(SWAP).to_numpy(), sides)
        fitted[name] = (accepted, back)
        held = ~np.isin(fs.pair_ids, y.index[:250]) & accepted
        assert (back[held] == truth.to_numpy()[held]).mean() >= 0.85
    assert (fitted["all_A"][1] == fitted["all_B"][1]).all()
    assert one_sided_gold(["A"] * 250) is not None and one_sided_gold(list(truth.iloc[:250])) is None


def test_panel_sides_is_the_routing_majority() -> None:
    """:func:`panel_sides` (from features) names the side judge.verdicts.majority_side does,
    wherever that majority is strict."""
    rng = np.random.default_rng(0)
    rows, expected = [], {}
    verdicts = ["A>>B", "A>B", "tie", "B>A", "B>>A", "invalid"]
    for i in range(500):
        drawn = []
        for judge in ("j1", "j2", "j3"):
            for order in ("ab", "ba")[: rng.integers(1, 3)]:
                v = verdicts[rng.integers(0, len(verdicts))]
                rows.append((i, judge, order, v))
                drawn.append(None if v == "invalid" else v)
        expected[i] = strict_majority(drawn)
        top = majority_side(side(v) for v in drawn if v is not None)
        assert expected[i] is None or top == expected[i]
    fs = build_features(pd.DataFrame(rows, columns=["pair_id", "judge", "order", "verdict"]))
    got = panel_sides(fs.X, fs.feature_names)
    assert got is not None
    assert dict(zip(fs.pair_ids.tolist(), got.tolist(), strict=True)) == expected


def test_no_directional_evidence_names_no_side() -> None:
    """A pair whose judges all say tie (or no judge) is predicted "tie" with confidence ~0, not
    "A" with confidence 0.5 by a tie-break."""
    df, truth = _panel_data(200, seed=2)
    ties = pd.DataFrame(
        [(999, j, o, "tie") for j in ("strong", "mid", "weak") for o in ("ab", "ba")], columns=df.columns
    )
    fs = build_features(pd.concat([df, ties]))
    cal = PairCalibrator(signed=fs.signed, feature_names=fs.feature_names).fit(fs.X[:-1], truth)
    assert cal.predict_side(fs.X[-1:]).tolist() == ["tie"]
    assert cal.confidence(fs.X[-1:])[0] < 0.01
    vote = PairCalibrator(signed=fs.signed, feature_names=fs.feature_names, method="vote").fit(
        fs.X[:-1], truth
    )
    assert vote.predict_side(fs.X[-1:]).tolist() == ["tie"]


def test_calibrator_doctests() -> None:
    assert doctest.testmod(calibrator_module).failed == 0
