"""End-of-replay scores of a flag set against the truth: precision, recall, F1, FPR, and the label-chosen best F1.

Pure functions of sets and dicts, shared by the evaluation, the baselines and the demo's report.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["detection_scores", "best_f1"]


def detection_scores(flagged: set[str], users: Iterable[str], attackers: dict[str, str]) -> dict:
    """Precision, recall, F1, FPR over `users`; per attack kind, genuine false positives count against each."""
    users = set(users)
    bad = {u for u in attackers if u in users}
    tp, fp = len(flagged & bad), len((flagged & users) - bad)
    fn, genuine = len(bad - flagged), len(users - bad)

    def prf(tp_: int, fn_: int) -> dict:
        p = tp_ / (tp_ + fp) if tp_ + fp else 0.0
        r = tp_ / (tp_ + fn_) if tp_ + fn_ else 0.0
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4)}

    per = {}
    for kind in sorted(set(attackers.values())):
        mine = {u for u in bad if attackers[u] == kind}
        per[kind] = prf(len(flagged & mine), len(mine - flagged))
    return {
        **prf(tp, fn),
        "fpr": round(fp / genuine, 4) if genuine else 0.0,
        "users": len(users),
        "attackers": len(bad),
        "per_attack": per,
    }


def best_f1(scores: dict[str, float], attackers: Iterable[str]) -> float:
    """F1 at the best threshold chosen WITH the labels: an optimistic upper bound, never a headline."""
    bad = set(attackers)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    total = sum(u in bad for u, _ in ranked)
    best = tp = 0.0
    for k, (u, _) in enumerate(ranked, 1):
        tp += u in bad
        if total:
            best = max(best, 2 * tp / (k + total))
    return round(best, 4)
