from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from kbridge.analytics import AnalyticsError, churn, churn_vs_truth, score_against_truth
from kbridge.analytics.churn import FEATURES, auc, fit_logistic
from kbridge.warehouse import Warehouse, open_warehouse
from tests.unit.analytics.churn_shop import LEAVERS, REGULARS, seed_churn_shop
from tests.unit.analytics.seed import ACCOUNT, AS_OF, Seed, ago, subscriptions

pytestmark = pytest.mark.unit


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    wh = open_warehouse("duckdb:///:memory:")
    yield wh
    wh.close()


def test_auc_is_the_share_of_correctly_ordered_pairs() -> None:
    # pairs (pos, neg): (0.35, 0.1) ok, (0.35, 0.4) wrong, (0.8, ·) ok twice -> 3 of 4
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auc([0.5, 0.5, 0.2], [1, 0, 0]) == 0.75  # a tie counts half
    assert auc([0.9, 0.1], [1, 0]) == 1.0
    assert auc([0.9, 0.1], [0, 1]) == 0.0
    assert auc([0.3, 0.7], [1, 1]) is None  # one class: undefined


def test_auc_matches_counting_pairs_on_random_scores() -> None:
    rng = random.Random(3)
    scores = [round(rng.random(), 1) for _ in range(200)]  # rounding makes many ties
    labels = [int(rng.random() < 0.3) for _ in scores]
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    pairs = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    assert auc(scores, labels) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_unpenalised_fit_reproduces_the_group_rates() -> None:
    # one binary feature: the maximum-likelihood model predicts each group's churn rate
    rows = [[0.0]] * 4 + [[1.0]] * 4
    labels = [1, 0, 0, 0, 1, 1, 1, 0]
    model = fit_logistic(rows, labels, l2=0.0)
    assert model.predict([0.0]) == pytest.approx(0.25, abs=1e-6)
    assert model.predict([1.0]) == pytest.approx(0.75, abs=1e-6)


def test_fit_recovers_the_coefficients_that_generated_the_data() -> None:
    rng = random.Random(11)
    rows, labels = [], []
    for _ in range(4000):
        x = [rng.gauss(0, 1), rng.gauss(0, 1)]
        z = -0.5 + 1.5 * x[0] - 1.0 * x[1]
        rows.append(x)
        labels.append(int(rng.random() < 1 / (1 + math.exp(-z))))
    model = fit_logistic(rows, labels, l2=0.0)
    # back from standardised to raw units
    raw = [w / sd for w, sd in zip(model.weights[1:], model.stds, strict=True)]
    assert raw[0] == pytest.approx(1.5, abs=0.15)
    assert raw[1] == pytest.approx(-1.0, abs=0.15)
    assert model.predict([0.0, 0.0]) == pytest.approx(1 / (1 + math.exp(0.5)), abs=0.04)


def test_separable_history_gives_a_perfect_holdout_and_ranking(warehouse: Warehouse) -> None:
    seed_churn_shop(Seed(warehouse))
    result = churn(warehouse, ACCOUNT, as_of=AS_OF)
    assert result.cutoff == AS_OF - timedelta(days=90)
    # NEVER (no activity) and LATE (created after the cutoff) are not labelled
    assert result.trained + result.holdout == 40
    assert result.holdout == 12  # 30 % of each class
    assert result.churn_rate == 0.5
    assert result.holdout_auc == 1.0
    assert sum(result.calibration.column("profiles")) == 12
    assert result.calibration.column("observed")[0] == 0.0
    assert result.calibration.column("observed")[-1] == 1.0
    # scored now: every profile, each leaver above each regular
    probs = dict(
        zip(result.profiles.column("profile_id"), result.profiles.column("churn_probability"),
            strict=True)
    )  # fmt: skip
    assert set(probs) == {*REGULARS, *LEAVERS, "NEVER", "LATE"}
    assert min(probs[p] for p in LEAVERS) > max(probs[p] for p in REGULARS)
    assert result.profiles.column("profile_id")[0] in LEAVERS  # most at risk first
    assert [r[0] for r in result.model.rows] == ["intercept", *FEATURES]
    recency = result.model.column("coefficient")[1]
    assert recency > 0  # longer since the last activity, more churn


def test_truth_scoring_counts_only_known_profiles(warehouse: Warehouse) -> None:
    seed_churn_shop(Seed(warehouse))
    truth = {"profiles": {**{p: {"churned": False} for p in REGULARS},
                          **{p: {"churned": True} for p in LEAVERS}}}  # fmt: skip
    score = churn_vs_truth(warehouse, ACCOUNT, truth, as_of=AS_OF)
    assert (score.profiles, score.churned, score.auc) == (40, 20, 1.0)
    assert score.klaviyo_auc is None
    assert score.klaviyo_profiles == 0
    # the truth the other way round: the same ranking is now perfectly wrong
    flipped = {"profiles": {p: {"churned": not f["churned"]} for p, f in truth["profiles"].items()}}
    assert score_against_truth(churn(warehouse, ACCOUNT, as_of=AS_OF), flipped).auc == 0.0


def test_klaviyos_churn_probability_is_scored_on_the_same_holdout(warehouse: Warehouse) -> None:
    seed_churn_shop(Seed(warehouse), klaviyo=True)
    result = churn(warehouse, ACCOUNT, as_of=AS_OF)
    assert result.klaviyo_holdout == 12
    assert result.klaviyo_auc == 0.0  # the seeded scores rank the classes backwards
    assert result.model_auc_on_klaviyo_rows == 1.0
    truth = {"profiles": {p: {"churned": p in LEAVERS} for p in (*REGULARS, *LEAVERS)}}
    score = score_against_truth(result, truth)
    assert (score.klaviyo_profiles, score.klaviyo_auc) == (40, 0.0)
    row = result.profiles.records()[result.profiles.column("profile_id").index("L03")]
    assert row["klaviyo_churn_probability"] == 0.1


def test_nothing_after_the_cutoff_reaches_the_model(warehouse: Warehouse) -> None:
    """Events and consent after T change the scores now, never the trained model."""
    baseline_wh = open_warehouse("duckdb:///:memory:")
    try:
        seed_churn_shop(Seed(baseline_wh))
        baseline = churn(baseline_wh, ACCOUNT, as_of=AS_OF)
    finally:
        baseline_wh.close()

    seed = Seed(warehouse)
    seed_churn_shop(seed)
    # after the cutoff (ago(90)): big orders and many emails for regulars (already
    # labelled "stayed"), and leavers (never subscribed before) subscribing. The labels
    # stay the same, so only a leak could change the model.
    for pid in REGULARS[:10]:
        for d in range(2, 80, 3):
            seed.event(pid, "Placed Order", ago(d), 5000.0)
            seed.event(pid, "Received Email", ago(d, hours=2))
    for i, pid in enumerate(LEAVERS):
        seed.profile(pid, ago(420 + i), subscriptions=subscriptions("SUBSCRIBED", email_ts=ago(30)))
    seed.commit()
    leaked = churn(warehouse, ACCOUNT, as_of=AS_OF)

    assert leaked.model.rows == baseline.model.rows
    assert leaked.calibration.rows == baseline.calibration.rows
    assert leaked.holdout_auc == baseline.holdout_auc
    # …while the scores at AS_OF do see the new orders
    orders = dict(zip(leaked.profiles.column("profile_id"), leaked.profiles.column("orders"),
                      strict=True))  # fmt: skip
    before = dict(zip(baseline.profiles.column("profile_id"), baseline.profiles.column("orders"),
                      strict=True))  # fmt: skip
    assert orders["R00"] == before["R00"] + 26


def test_a_history_shorter_than_the_horizon_is_one_clear_error(warehouse: Warehouse) -> None:
    seed = Seed(warehouse)
    seed.profile("P1", ago(40))
    seed.event("P1", "Opened Email", ago(30))
    seed.commit()
    with pytest.raises(AnalyticsError, match="no profile was active before the cutoff"):
        churn(warehouse, ACCOUNT, as_of=AS_OF)


def test_one_outcome_for_everyone_is_one_clear_error(warehouse: Warehouse) -> None:
    seed = Seed(warehouse)
    for pid in ("P1", "P2", "P3"):
        seed.profile(pid, ago(300))
        seed.event(pid, "Opened Email", ago(200))
    seed.commit()
    with pytest.raises(AnalyticsError, match="all 3 profiles active before the cutoff churned"):
        churn(warehouse, ACCOUNT, as_of=AS_OF)
    with pytest.raises(ValueError, match="horizon_days"):
        churn(warehouse, ACCOUNT, as_of=AS_OF, horizon_days=0)


def test_a_malformed_order_value_counts_as_nothing(warehouse: Warehouse) -> None:
    seed = Seed(warehouse)
    seed_churn_shop(seed)
    clean = churn(warehouse, ACCOUNT, as_of=AS_OF).model
    # an order whose value is text: no revenue, but still an order
    malformed: Any = "n/a"
    seed.event("R00", "Placed Order", ago(200), malformed)
    seed.commit()
    model = churn(warehouse, ACCOUNT, as_of=AS_OF).model
    means = dict(zip(model.column("feature"), model.column("mean"), strict=True))
    before = dict(zip(clean.column("feature"), clean.column("mean"), strict=True))
    assert means["log_revenue"] == before["log_revenue"]
    assert means["log_orders"] > before["log_orders"]
