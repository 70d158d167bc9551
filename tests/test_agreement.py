"""Agreement statistics and label aggregation, checked on synthetic data and on the real PandaLM
(3 human annotators) and LLMBar (judges in both orders) sets under ../shared/data.

Numbers measured on the real data (pinned below with small tolerances):
* PandaLM, 999 items x 3 annotators: Fleiss kappa 0.864 (identical to statsmodels), Krippendorff
  alpha 0.864 nominal / 0.877 ordinal (A < tie < B); pairwise Cohen kappa 0.85-0.88; no item
  has a three-way split; Dawid-Skene = majority vote on every item; leave-one-out annotator
  accuracy 0.95-0.96.
* LLMBar dev, gpt-4/vanilla_norules: swap-consistent on 86% of pairs, 86% of those match gold
  (the facts stated in shared/data/README.md).

Cross-checks (the issue's "agreement numbers match krippendorff and statsmodels/sklearn"): our
functions, and the service's vote tables (api.review.consensus.vote_table, what
GET /v1/projects/{id}/agreement reports), equal ``krippendorff.alpha`` fed a reliability matrix
directly, ``statsmodels``' Fleiss kappa and ``sklearn``'s Cohen kappa, on PandaLM and on random
five-point data with missing ratings.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from api.review.consensus import overlapped, vote_table
from calibration import aggregation, agreement
from calibration.aggregation import dawid_skene, majority_vote, reviewer_confusion, reviewer_quality
from calibration.agreement import (
    cohen_kappa,
    confusion,
    fleiss_kappa,
    judge_vs_human,
    krippendorff_alpha,
    pairwise_cohen_kappa,
)
from judge.verdicts import SIDES, VERDICTS, to_side

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PANDALM = DATA / "pandalm" / "testset_3annotators.jsonl"
LLMBAR = DATA / "replay" / "llmbar_dev.jsonl"


def _read(path: Path) -> list[dict]:
    if not path.exists():
        pytest.skip(f"real data not available at {path}")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def pandalm_long() -> pd.DataFrame:
    rows = _read(PANDALM)
    return pd.DataFrame(
        [
            {"item": r["id"], "annotator": a["annotator"], "label": a["label"]}
            for r in rows
            for a in r["annotations"]
        ]
    )


@pytest.fixture(scope="module")
def pandalm_judgments() -> pd.DataFrame:
    rows = _read(PANDALM)
    return pd.DataFrame([{"pair_id": r["id"], **j} for r in rows for j in r["judgments"]])


@pytest.fixture(scope="module")
def llmbar() -> tuple[pd.DataFrame, dict[str, str]]:
    rows = _read(LLMBAR)
    judgments = pd.DataFrame([{"pair_id": r["id"], **j} for r in rows for j in r["judgments"]])
    return judgments, {r["id"]: r["gold"] for r in rows}


def test_docstring_examples_run() -> None:
    assert doctest.testmod(agreement).failed == 0
    assert doctest.testmod(aggregation).failed == 0


# ----------------------------------------------------------------------------- two raters


def test_to_side_accepts_both_vocabularies() -> None:
    assert [to_side(v) for v in ("A>>B", "A>B", "tie", "B>A", "B>>A")] == ["A", "A", "tie", "B", "B"]
    assert [to_side(v) for v in ("A", "B", "tie", "invalid", None)] == ["A", "B", "tie", None, None]
    with pytest.raises(ValueError):
        to_side("a")


def test_cohen_kappa_matches_sklearn_and_skips_missing() -> None:
    y1 = ["A", "B", "A", "tie", "B", "A"]
    y2 = ["A", "B", "B", "tie", "B", "A"]
    assert cohen_kappa(y1, y2) == pytest.approx(cohen_kappa_score(y1, y2))
    assert cohen_kappa(y1 + ["A"], y2 + [None]) == pytest.approx(cohen_kappa_score(y1, y2))
    assert np.isnan(cohen_kappa([], []))
    assert np.isnan(cohen_kappa(["A", "A"], ["A", "A"]))  # chance agreement 1: undefined


def test_confusion_rows_true_columns_pred() -> None:
    m = confusion(["A", "A", "B", "tie", "B"], ["A", "B", "B", "A", "invalid"])
    assert m.tolist() == [[1, 0, 1], [1, 0, 0], [0, 0, 1]]  # order A, tie, B; "invalid" left out
    m = confusion(["A", "B"], ["invalid", "B"], labels=("A", "tie", "B", "invalid"))
    assert m[0, 3] == 1 and m[2, 2] == 1


# ----------------------------------------------------------------------------- many raters


def test_fleiss_and_alpha_perfect_and_chance() -> None:
    perfect = pd.DataFrame(
        {
            "item": np.repeat(range(20), 3),
            "annotator": list("xyz") * 20,
            "label": np.repeat(["A", "B"] * 10, 3),
        }
    )
    assert fleiss_kappa(perfect) == pytest.approx(1.0)
    assert krippendorff_alpha(perfect) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = perfect.assign(label=rng.choice(["A", "B", "tie"], size=len(perfect)))
    assert abs(fleiss_kappa(noise)) < 0.1
    assert abs(krippendorff_alpha(noise)) < 0.1


def test_degenerate_long_tables() -> None:
    empty = pd.DataFrame(columns=["item", "annotator", "label"])
    assert np.isnan(fleiss_kappa(empty)) and np.isnan(krippendorff_alpha(empty))
    one_label = pd.DataFrame({"item": [1, 1, 2, 2], "annotator": list("xyxy"), "label": ["A"] * 4})
    assert np.isnan(fleiss_kappa(one_label)) and np.isnan(krippendorff_alpha(one_label))
    with pytest.raises(ValueError):
        fleiss_kappa(pd.DataFrame({"item": [1], "label": ["A"]}))


def test_pandalm_fleiss_matches_statsmodels(pandalm_long: pd.DataFrame) -> None:
    ours = fleiss_kappa(pandalm_long)
    assert ours == pytest.approx(0.8642, abs=5e-4)
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    wide = pandalm_long.pivot(index="item", columns="annotator", values="label").to_numpy()
    assert ours == pytest.approx(inter_rater.fleiss_kappa(inter_rater.aggregate_raters(wide)[0]))


def test_pandalm_krippendorff(pandalm_long: pd.DataFrame) -> None:
    nominal = krippendorff_alpha(pandalm_long, "nominal")
    ordinal = krippendorff_alpha(pandalm_long, "ordinal")
    assert nominal == pytest.approx(0.8642, abs=5e-4)
    # Nominal alpha and Fleiss' kappa converge for many items and complete data.
    assert nominal == pytest.approx(fleiss_kappa(pandalm_long), abs=1e-3)
    # Ordinal gives partial credit for "tie" vs a side, so it is a little higher.
    assert ordinal == pytest.approx(0.8775, abs=5e-4)
    # Missing ratings are allowed: drop a tenth of them at random.
    sparse = pandalm_long.sample(frac=0.9, random_state=0)
    assert krippendorff_alpha(sparse) == pytest.approx(nominal, abs=0.02)
    assert fleiss_kappa(sparse) == pytest.approx(nominal, abs=0.02)


def test_pandalm_pairwise_kappa(pandalm_long: pd.DataFrame) -> None:
    table = pairwise_cohen_kappa(pandalm_long)
    assert len(table) == 3 and (table["n"] == 999).all()
    assert table["kappa"].between(0.84, 0.89).all()
    assert table["agreement"].between(0.90, 0.94).all()


# ----------------------------------------------------------------------------- judges vs humans


def test_judge_vs_human_small_example() -> None:
    judgments = pd.DataFrame(
        {
            "pair_id": [1, 1, 2, 2, 3, 3, 4],
            "judge": ["j"] * 7,
            "order": ["ab", "ba"] * 3 + ["ab"],
            "verdict": ["A>>B", "A>B", "B>A", "A>B", "invalid", "B>>A", "tie"],
        }
    )
    gold = {1: "A", 2: "B", 3: "B", 4: "tie", 5: "A"}
    row = judge_vs_human(judgments, gold).iloc[0]
    assert row["n_pairs"] == 4 and row["n_verdicts"] == 7
    assert row["accuracy"] == pytest.approx(5 / 7)  # the invalid counts as wrong
    assert row["swap_consistency"] == pytest.approx(1 / 3)  # pairs 1-3 seen twice; only 1 agrees
    assert row["consistent_accuracy"] == pytest.approx(1.0)
    assert row["invalid_rate"] == pytest.approx(1 / 7)


def test_judge_vs_human_rejects_duplicates() -> None:
    judgments = pd.DataFrame(
        {"pair_id": [1, 1], "judge": ["j", "j"], "order": ["ab", "ab"], "verdict": ["A>B", "B>A"]}
    )
    with pytest.raises(ValueError):
        judge_vs_human(judgments, {1: "A"})


def test_llmbar_matches_readme_facts(llmbar: tuple[pd.DataFrame, dict[str, str]]) -> None:
    judgments, gold = llmbar
    table = judge_vs_human(judgments, gold).set_index("judge")
    gpt4 = table.loc["gpt-4/vanilla_norules"]
    assert gpt4["n_pairs"] == 566 and gpt4["n_verdicts"] == 1132
    assert gpt4["swap_consistency"] == pytest.approx(0.86, abs=0.005)
    assert gpt4["consistent_accuracy"] == pytest.approx(0.86, abs=0.005)
    assert gpt4["accuracy"] == pytest.approx(0.803, abs=0.002)
    assert gpt4["kappa"] == pytest.approx(0.621, abs=0.002)
    # gpt-4 is the best of the four judges that saw all 566 pairs, on every column.
    main = table[table["n_pairs"] == 566]
    assert len(main) == 4
    assert main["accuracy"].idxmax() == "gpt-4/vanilla_norules"
    assert main["swap_consistency"].idxmax() == "gpt-4/vanilla_norules"


def test_pandalm_single_order_judges(pandalm_long: pd.DataFrame, pandalm_judgments: pd.DataFrame) -> None:
    gold = majority_vote(pandalm_long).labels.dropna()
    table = judge_vs_human(pandalm_judgments, gold).set_index("judge")
    assert table["swap_consistency"].isna().all()  # one order only: position bias not measurable
    assert table.loc["gpt-3.5-turbo", "accuracy"] == pytest.approx(0.693, abs=0.002)
    assert table.loc["gpt-3.5-turbo", "invalid_rate"] == pytest.approx(0.063, abs=0.001)
    assert table.loc["pandalm-7b", "accuracy"] == pytest.approx(0.668, abs=0.002)


# ----------------------------------------------------------------------------- aggregation


def test_majority_vote_tie_handling() -> None:
    long = pd.DataFrame(
        {
            "item": [1, 1, 1, 2, 2, 3, 3],
            "annotator": list("xyzxyxy"),
            "label": ["A", "B", "tie", "A", "A", "A", "B"],
        }
    )
    assert majority_vote(long).labels.to_dict() == {1: None, 2: "A", 3: None}
    assert majority_vote(long, on_tie="label").labels.to_dict() == {1: "tie", 2: "A", 3: "tie"}
    posterior = majority_vote(long).posterior
    assert posterior.loc[3].to_dict() == {"A": 0.5, "tie": 0.0, "B": 0.5}
    assert majority_vote(long.iloc[:0]).labels.empty and dawid_skene(long.iloc[:0]).labels.empty


def test_pandalm_aggregation(pandalm_long: pd.DataFrame) -> None:
    mv = majority_vote(pandalm_long)
    ds = dawid_skene(pandalm_long)
    assert mv.labels.notna().all()  # no three-way split among the 999 items
    assert mv.labels.value_counts().to_dict() == {"B": 472, "A": 422, "tie": 105}
    assert ds.converged
    assert np.allclose(ds.posterior.sum(axis=1), 1.0)
    assert (ds.labels == mv.labels).mean() == pytest.approx(1.0)
    # Every annotator is estimated as reliable: >= 88% on the diagonal of each confusion matrix.
    for matrix in ds.confusions.values():
        assert np.diag(matrix.to_numpy()).min() > 0.88


def test_pandalm_reviewer_quality(pandalm_long: pd.DataFrame) -> None:
    loo = reviewer_quality(pandalm_long).set_index("annotator")
    assert loo["accuracy"].between(0.94, 0.97).all()
    assert loo["n"].between(900, 999).all()  # items where the other two split are skipped
    vs_ds = reviewer_quality(pandalm_long, dawid_skene(pandalm_long).labels).set_index("annotator")
    assert (vs_ds["accuracy"] >= loo["accuracy"]).all()  # own vote in the reference inflates accuracy
    matrix = reviewer_confusion(pandalm_long, "annotator2")
    assert list(matrix.index) == ["A", "tie", "B"] and matrix.to_numpy().sum() == loo.loc["annotator2", "n"]


def test_dawid_skene_downweights_spammers() -> None:
    rng = np.random.default_rng(7)
    n_items, cats = 400, np.array(["A", "tie", "B"])
    truth = rng.choice(3, size=n_items, p=[0.45, 0.1, 0.45])
    rows = []
    for worker, accuracy in [("good1", 0.85), ("good2", 0.8), ("spam1", 0.0), ("spam2", 0.0), ("spam3", 0.0)]:
        correct = rng.uniform(size=n_items) < accuracy
        given = np.where(correct, truth, rng.integers(0, 3, size=n_items))
        rows += [{"item": i, "annotator": worker, "label": cats[g]} for i, g in enumerate(given)]
    long = pd.DataFrame(rows)
    truth_s = pd.Series(cats[truth], index=range(n_items))
    mv_acc = (majority_vote(long, on_tie="label").labels == truth_s).mean()
    ds = dawid_skene(long)
    ds_acc = (ds.labels == truth_s).mean()
    assert ds_acc > mv_acc + 0.1
    quality = reviewer_quality(long, ds.labels).set_index("annotator")
    assert quality.loc["good1", "accuracy"] > 0.8 and quality.loc["spam1", "accuracy"] < 0.5


# ----------------------------------------------------------------------------- cross-checks

krippendorff = pytest.importorskip("krippendorff")
inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")


def _reliability(long: pd.DataFrame, categories: tuple[str, ...]) -> np.ndarray:
    """Annotators x items matrix of category positions, NaN where an annotator did not rate:
    the ``krippendorff`` package's own input, built independently of our count matrix."""
    wide = long.pivot(index="annotator", columns="item", values="label")
    return wide.apply(lambda col: col.map({c: i for i, c in enumerate(categories)})).to_numpy(dtype=float)


def _labels(long: pd.DataFrame, source: str = "gold") -> list[SimpleNamespace]:
    return [
        SimpleNamespace(pair_id=r.item, annotator=r.annotator, label=r.label, source=source)
        for r in long.itertuples()
    ]


def _random_five_point(seed: int, n_items: int = 300, missing: float = 0.3) -> pd.DataFrame:
    """Four raters on a five-point scale, correlated through a latent truth, some ratings missing."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, size=n_items)
    rows = []
    for annotator, noise in [("r1", 0.6), ("r2", 0.9), ("r3", 1.3), ("r4", 2.5)]:
        given = np.clip(np.rint(truth + rng.normal(0, noise, size=n_items)), 0, 4).astype(int)
        keep = rng.uniform(size=n_items) > missing
        rows += [
            {"item": i, "annotator": annotator, "label": VERDICTS[g]}
            for i, g in zip(np.flatnonzero(keep), given[keep], strict=True)
        ]
    return pd.DataFrame(rows)


def test_pandalm_alpha_and_fleiss_match_the_packages(pandalm_long: pd.DataFrame) -> None:
    data = _reliability(pandalm_long, SIDES)
    for level in ("nominal", "ordinal"):
        expected = krippendorff.alpha(
            reliability_data=data, level_of_measurement=level, value_domain=[0, 1, 2]
        )
        assert krippendorff_alpha(pandalm_long, level, categories=SIDES) == pytest.approx(expected, abs=1e-12)
    wide = pandalm_long.pivot(index="item", columns="annotator", values="label").to_numpy()
    expected_fleiss = inter_rater.fleiss_kappa(inter_rater.aggregate_raters(wide)[0])
    assert fleiss_kappa(pandalm_long) == pytest.approx(expected_fleiss, abs=1e-12)
    # The service builds its table from label rows: same numbers.
    service = overlapped(vote_table(_labels(pandalm_long)))
    assert fleiss_kappa(service, categories=SIDES) == pytest.approx(expected_fleiss, abs=1e-12)
    nominal = krippendorff.alpha(
        reliability_data=data, level_of_measurement="nominal", value_domain=[0, 1, 2]
    )
    assert krippendorff_alpha(service, "nominal", categories=SIDES) == pytest.approx(nominal, abs=1e-12)


def test_pandalm_cohen_matches_sklearn(pandalm_long: pd.DataFrame) -> None:
    wide = pandalm_long.pivot(index="item", columns="annotator", values="label")
    table = pairwise_cohen_kappa(overlapped(vote_table(_labels(pandalm_long))))
    assert len(table) == 3
    for row in table.itertuples():
        assert row.kappa == pytest.approx(
            cohen_kappa_score(wide[row.annotator_1], wide[row.annotator_2]), abs=1e-12
        )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_five_point_with_missing_values_matches_the_packages(seed: int) -> None:
    long = _random_five_point(seed)
    data = _reliability(long, VERDICTS)
    assert np.isnan(data).mean() > 0.2  # really sparse
    for level in ("ordinal", "nominal", "interval"):
        expected = krippendorff.alpha(
            reliability_data=data, level_of_measurement=level, value_domain=list(range(5))
        )
        assert krippendorff_alpha(long, level, categories=VERDICTS) == pytest.approx(expected, abs=1e-12)
        service = vote_table(_labels(long), scale="five")
        assert krippendorff_alpha(service, level, categories=VERDICTS) == pytest.approx(expected, abs=1e-12)
    # Ordinal alpha rewards near misses on the five-point scale: higher than nominal here.
    assert (
        krippendorff_alpha(long, "ordinal", categories=VERDICTS)
        > krippendorff_alpha(long, "nominal", categories=VERDICTS) + 0.1
    )
    # Cohen's kappa per pair of raters, skipping items either did not rate (sklearn on the overlap).
    wide = long.pivot(index="item", columns="annotator", values="label")
    for row in pairwise_cohen_kappa(long).itertuples():
        both = wide[[row.annotator_1, row.annotator_2]].dropna()
        assert row.n == len(both)
        assert row.kappa == pytest.approx(cohen_kappa_score(both.iloc[:, 0], both.iloc[:, 1]), abs=1e-12)
        weighted = cohen_kappa(
            wide[row.annotator_1], wide[row.annotator_2], labels=VERDICTS, weights="linear"
        )
        assert weighted == pytest.approx(
            cohen_kappa_score(both.iloc[:, 0], both.iloc[:, 1], labels=list(VERDICTS), weights="linear"),
            abs=1e-12,
        )


def test_fleiss_matches_statsmodels_on_complete_random_data() -> None:
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 3, size=200)
    rows = [
        {"item": i, "annotator": w, "label": SIDES[t if rng.uniform() < acc else rng.integers(0, 3)]}
        for w, acc in [("x", 0.9), ("y", 0.7), ("z", 0.5), ("v", 0.3)]
        for i, t in enumerate(truth)
    ]
    long = pd.DataFrame(rows)
    wide = long.pivot(index="item", columns="annotator", values="label").to_numpy()
    expected = inter_rater.fleiss_kappa(inter_rater.aggregate_raters(wide)[0])
    assert fleiss_kappa(long) == pytest.approx(expected, abs=1e-12)
    assert 0.1 < expected < 0.6  # a real signal, not a degenerate 0 or 1
