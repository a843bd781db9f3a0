"""The churn model: an L2-penalised logistic regression fitted by Newton/IRLS, and its AUC.

Pure Python: 14 features and tens of thousands of profiles need a few column sums
per Newton step (``sum(map(mul, …))`` runs in C), not numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import mul

from kbridge.analytics.errors import AnalyticsError

__all__ = ["LogisticModel", "auc", "fit_logistic"]

_MAX_ITER = 50


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """``a x = b`` by Gaussian elimination with partial pivoting (a is small, SPD)."""
    n = len(b)
    m = [[*row, rhs] for row, rhs in zip(a, b, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-12:
            raise AnalyticsError("the churn model's equations are singular")
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


@dataclass(frozen=True, slots=True)
class LogisticModel:
    """A fitted logistic regression on standardised features.

    ``weights[0]`` is the intercept, the others apply to ``(x - mean) / std`` of each
    feature; ``iterations`` counts the Newton steps the fit took."""

    means: tuple[float, ...]
    stds: tuple[float, ...]
    weights: tuple[float, ...]
    iterations: int

    def predict(self, x: Sequence[float]) -> float:
        """The probability of the positive class (churn) for raw feature values ``x``."""
        z = self.weights[0]
        for w, v, mu, sd in zip(self.weights[1:], x, self.means, self.stds, strict=True):
            z += w * (v - mu) / sd
        return _sigmoid(z)


def _linear(cols: list[list[float]], beta: Sequence[float]) -> list[float]:
    """``X @ beta`` for column-stored ``X`` whose first column is the intercept's ones."""
    z = [beta[0]] * len(cols[0])
    for col, w in zip(cols[1:], beta[1:], strict=True):
        if w:
            z = [a + w * b for a, b in zip(z, col, strict=True)]
    return z


def _penalised_loglik(
    cols: list[list[float]], y: list[float], beta: list[float], l2: float
) -> float:
    z = _linear(cols, beta)
    # log-likelihood of a logistic model, written to stay finite for large |z|
    ll = sum(
        yi * zi - (max(zi, 0.0) + math.log1p(math.exp(-abs(zi))))
        for yi, zi in zip(y, z, strict=True)
    )
    return ll - 0.5 * l2 * sum(b * b for b in beta[1:])


def fit_logistic(
    rows: Sequence[Sequence[float]], labels: Sequence[int], *, l2: float = 1.0
) -> LogisticModel:
    """Newton/IRLS fit of a logistic regression with an L2 penalty (not on the intercept).

    Features are standardised first (a constant feature keeps a zero weight).
    """
    if not rows:
        raise AnalyticsError("no profiles to train the churn model on")
    n, k = len(rows), len(rows[0])
    means, stds = [], []
    cols: list[list[float]] = [[1.0] * n]
    for j in range(k):
        col = [float(r[j]) for r in rows]
        mu = sum(col) / n
        sd = math.sqrt(sum((v - mu) ** 2 for v in col) / n)
        sd = sd if sd > 1e-12 else 1.0
        means.append(mu)
        stds.append(sd)
        cols.append([(v - mu) / sd for v in col])
    y = [float(v) for v in labels]
    beta = [0.0] * (k + 1)
    current = _penalised_loglik(cols, y, beta, l2)
    it = 0
    for it in range(1, _MAX_ITER + 1):  # noqa: B007  (the count is reported)
        p = [_sigmoid(v) for v in _linear(cols, beta)]
        w = [max(pi * (1.0 - pi), 1e-10) for pi in p]
        resid = [yi - pi for yi, pi in zip(y, p, strict=True)]
        grad = [sum(map(mul, cols[j], resid)) - (l2 * beta[j] if j else 0.0) for j in range(k + 1)]
        hess = [[0.0] * (k + 1) for _ in range(k + 1)]
        for a in range(k + 1):
            wa = list(map(mul, w, cols[a]))
            for b in range(a, k + 1):
                hess[a][b] = hess[b][a] = sum(map(mul, wa, cols[b]))
            if a:
                hess[a][a] += l2
        step = _solve(hess, grad)
        # Newton on a concave objective; halving guards the rare overshoot far from the optimum
        scale = 1.0
        while True:
            trial = [b + scale * s for b, s in zip(beta, step, strict=True)]
            value = _penalised_loglik(cols, y, trial, l2)
            if value >= current - 1e-9 or scale < 1e-6:
                break
            scale /= 2
        beta, current = trial, value
        if max(abs(scale * s) for s in step) < 1e-8:
            break
    return LogisticModel(tuple(means), tuple(stds), tuple(beta), it)


def auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve by the rank (Mann-Whitney) formula, ties at half.

    ``None`` when ``labels`` hold only one class (the AUC is undefined)."""
    pos = sum(1 for v in labels if v)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1  # ranks are 1-based; tied scores share their mean rank
        rank_sum += avg * sum(1 for m in order[i : j + 1] if labels[m])
        i = j + 1
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
