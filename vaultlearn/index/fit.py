"""The reranker: a linear model over the pair features, fitted by hide-and-rank on the vault's own links.

Hide one visible link per sampled source note (all at once, the graph without them), build each source's
candidates and features, and fit a logistic regression (scikit-learn) telling the hidden target from the
other candidates. The model is kept only when it ranks the hidden targets better than cosine alone, both on
links it was not fitted on (fitted on half the links, checked on the other half) and on all of them;
otherwise ranking is plain cosine. The stored form is its standardisation and coefficients (JSON), applied
with numpy at query time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from vaultlearn.metrics import recall_mrr
from vaultlearn.index.features import FEATURES, PairFeatures
from vaultlearn.threads import one_blas_thread

MIN_CASES = 40  # fewer hidden links than this: rank by cosine
MIN_GAIN = 0.005  # MRR the model must add over cosine, on unseen and on all fit links
NEGATIVES = 30  # negatives per query used to fit (all are used to measure)
LEARNED_WEIGHTS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # tried for the learned similarity
LEARNED_FOLDS = 5  # folds of the out-of-sample check of its weight
LEARNED_P = 0.05  # the check's one-sided significance level


@dataclass(frozen=True)
class LinearRanker:
    """score = Σ coef·(feature − mean)/scale over ``features``."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]

    def contributions(self, pairs: PairFeatures) -> np.ndarray:
        """(pairs, len(features)) terms of the score, one per feature."""
        columns = pairs.columns(self.features)
        return (columns - np.array(self.mean)) / np.array(self.scale) * np.array(self.coef)

    def scores(self, pairs: PairFeatures) -> np.ndarray:
        """The summed contributions, as one product (the fit scores a few hundred thousand pairs at a time)."""
        weights = np.array(self.coef) / np.array(self.scale)
        return pairs.columns(self.features) @ weights - float(np.array(self.mean) @ weights)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "LinearRanker":
        return cls(*(tuple(data[k]) for k in ("features", "mean", "scale", "coef")))


COSINE = LinearRanker(("cosine",), (0.0,), (1.0,), (1.0,))


def target_ranks(scores: np.ndarray, pairs: PairFeatures, targets: np.ndarray) -> np.ndarray:
    """Rank of each query's hidden target among its candidates (ties count against it; inf: not a candidate)."""
    queries = len(targets)
    is_target = pairs.notes == targets[pairs.rows]
    target_score = np.full(queries, np.nan)
    target_score[pairs.rows[is_target]] = scores[is_target]
    above = (scores >= target_score[pairs.rows]) & ~is_target
    ranks = 1.0 + np.bincount(pairs.rows, weights=above, minlength=queries)
    ranks[np.isnan(target_score)] = np.inf
    return ranks


def quality(ranks: np.ndarray) -> dict:
    """Recall@10 and MRR (:func:`metrics.recall_mrr`) of a set of ranks; an empty set is an error."""
    if not len(ranks):
        raise ValueError("no hidden links to measure")
    recall, mrr = recall_mrr(ranks, 10)
    return {"recall@10": recall, "mrr": mrr}


def fit_linear(pairs: PairFeatures, targets: np.ndarray, queries: np.ndarray,
               features: Sequence[str] = FEATURES, seed: int = 0) -> LinearRanker:
    """Logistic regression of "is the hidden target" over the candidates of ``queries`` (row indices)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    chosen = np.isin(pairs.rows, queries)
    label = pairs.notes == targets[pairs.rows]
    keep = chosen & (label | (rng.random(len(label)) < _negative_share(pairs, chosen)))
    x = pairs.columns(features)[keep]
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=300, tol=1e-3)
    with one_blas_thread():
        model.fit((x - mean) / scale, label[keep])
    return LinearRanker(tuple(features), tuple(mean.tolist()), tuple(scale.tolist()), tuple(model.coef_[0].tolist()))


def _negative_share(pairs: PairFeatures, chosen: np.ndarray) -> float:
    queries = len(np.unique(pairs.rows[chosen]))
    return min(1.0, NEGATIVES * queries / max(1, int(chosen.sum())))


def fit_ranker(pairs: PairFeatures, targets: np.ndarray, features: Sequence[str] = FEATURES,
               seed: int = 0) -> tuple[LinearRanker, dict]:
    """The fitted ranker, or COSINE when it does not beat cosine; and a report of both on the fit links."""
    cases = len(targets)
    report = {"cases": cases}
    if cases < MIN_CASES or not np.any(pairs.notes == targets[pairs.rows]):
        return COSINE, {**report, "model": "cosine", "why": f"fewer than {MIN_CASES} links to fit on"}
    cosine_ranks = target_ranks(pairs.column("cosine"), pairs, targets)
    order = np.random.default_rng(seed).permutation(cases)
    fit_on, check_on = order[: cases // 2], order[cases // 2:]
    half = fit_linear(pairs, targets, fit_on, features, seed)
    unseen = target_ranks(half.scores(pairs), pairs, targets)[check_on]
    ranker = fit_linear(pairs, targets, np.arange(cases), features, seed)
    fitted = target_ranks(ranker.scores(pairs), pairs, targets)
    report.update({f"{k}_cosine_unseen": v for k, v in quality(cosine_ranks[check_on]).items()})
    report.update({f"{k}_cosine": v for k, v in quality(cosine_ranks).items()})
    report.update({f"{k}_unseen": v for k, v in quality(unseen).items()})
    report.update({f"{k}_fitted": v for k, v in quality(fitted).items()})
    beats = (report["mrr_unseen"] >= report["mrr_cosine_unseen"] + MIN_GAIN
             and report["mrr_fitted"] >= report["mrr_cosine"] + MIN_GAIN)
    if not beats:
        return COSINE, {**report, "model": "cosine", "why": "the model did not beat cosine on the fit links"}
    return ranker, {**report, "model": "linear"}


def add_learned(ranker: LinearRanker, pairs: PairFeatures, targets: np.ndarray,
                seed: int = 0) -> tuple[LinearRanker, dict]:
    """``ranker`` plus the learned similarity (the ``learned`` feature, standardised) at the weight of
    ``LEARNED_WEIGHTS`` with the best MRR on ``pairs`` — hidden links the learner never fitted — if that choice
    holds out of sample; else at 0. The rest of the ranker is fitted on all links, before; only this weight needs
    links the learner has not seen.

    Out of sample: in each of ``LEARNED_FOLDS`` folds of the cases the weight is chosen on the other folds
    (0 among the choices) and its gain in reciprocal rank measured on the fold's cases. The weight is taken
    only when that out-of-fold gain is at least ``MIN_GAIN`` MRR and above 0 by a one-sided paired t-test at
    ``LEARNED_P``: on a few hundred cases the best of ten weights adds some MRR by chance alone.
    """
    from scipy.stats import ttest_1samp

    if not len(targets):
        raise ValueError("no hidden links the learner never fitted: nothing to weigh the learned similarity on")
    learned = pairs.column("learned")
    mean, scale = float(learned.mean()), float(learned.std()) or 1.0
    base = ranker.scores(pairs)
    weights = (0.0, *LEARNED_WEIGHTS)
    reciprocal = np.stack([1.0 / target_ranks(base + w * (learned - mean) / scale, pairs, targets)
                           for w in weights])  # (weights, cases); a target outside the candidates counts 0
    fold = np.random.default_rng(seed).permutation(len(targets)) % LEARNED_FOLDS
    gain = np.empty(len(targets))
    for k in range(LEARNED_FOLDS):
        chosen = int(np.argmax(reciprocal[:, fold != k].mean(axis=1)))  # ties: the smaller weight, 0 first
        gain[fold == k] = reciprocal[chosen, fold == k] - reciprocal[0, fold == k]
    p = float(ttest_1samp(gain, 0.0, alternative="greater").pvalue) if np.any(gain) else 1.0
    holds = gain.mean() >= MIN_GAIN and p < LEARNED_P
    best = int(np.argmax(reciprocal.mean(axis=1))) if holds else 0
    stacked = LinearRanker((*ranker.features, "learned"), (*ranker.mean, mean), (*ranker.scale, scale),
                           (*ranker.coef, weights[best]))
    return stacked, {"cases": len(targets), "weight": weights[best], "mrr_without": float(reciprocal[0].mean()),
                     "mrr_with": float(reciprocal[best].mean()), "gain_out_of_fold": float(gain.mean()),
                     "p": round(p, 4)}
