"""The contract every streaming detector passes (river's `checks` style): one parametrised test per rule.

A detector is stream state with the vocabulary `update` (one event) → `flush` (once per batch) →
`score` (a user's verdict) → `snapshot` / `restore` (JSON-able state), plus the per-user checkpoint
pair the worker uses (`user_state` / `from_users`, `events_of`). Add a detector to DETECTORS and it
must pass all of these.
"""

from __future__ import annotations

import json

import pytest

from streams.fraud import FraudDetector, Verdict
from streams.fraud.evaluation import inject_attacks
from streams.sources.attacks import AttackSpec

DETECTORS = {"fraud-2": FraudDetector}
BATCH = 400


@pytest.fixture(scope="module")
def stream(ratings_module):
    frame, _ = inject_attacks(ratings_module, [AttackSpec("average", 0.05, 0.03)], seed=3)
    rows = list(zip(frame["user"], frame["item"], frame["type"], frame["timestamp"], frame["rating"]))
    rows.sort(key=lambda r: r[3])
    return rows


@pytest.fixture(scope="module")
def ratings_module():
    from tests.unit.conftest import make_ratings

    return make_ratings(200, 300, seed=11)


def _run(detector, rows) -> None:
    for start in range(0, len(rows), BATCH):
        for row in rows[start : start + BATCH]:
            verdict = detector.update(*row)
            assert verdict is None or isinstance(verdict, Verdict)
        assert all(isinstance(v, Verdict) for v in detector.flush())


def _verdicts(detector, users) -> dict:
    """user -> (flagged, reasons, score to 3 decimals): what a verdict says, as the stream publishes it."""
    out = {}
    for user in sorted(users):
        verdict = detector.score(user)
        out[user] = (verdict.flagged, tuple(verdict.reasons), round(verdict.score, 3))
    return out


@pytest.mark.parametrize("make", DETECTORS.values(), ids=DETECTORS.keys())
def test_an_unknown_user_is_not_flagged(make):
    verdict = make().score("never-seen")
    assert isinstance(verdict, Verdict) and not verdict.flagged and verdict.score == 0.0


@pytest.mark.parametrize("make", DETECTORS.values(), ids=DETECTORS.keys())
def test_update_flush_score_is_deterministic(make, stream):
    first, second = make(), make()
    _run(first, stream)
    _run(second, stream)
    users = {r[0] for r in stream}
    assert _verdicts(first, users) == _verdicts(second, users)


@pytest.mark.parametrize("make", DETECTORS.values(), ids=DETECTORS.keys())
def test_snapshot_json_restore_then_continue_equals_an_uninterrupted_run(make, stream):
    cut = (len(stream) // 2) // BATCH * BATCH  # at a batch boundary, where the stream checkpoints
    whole = make()
    _run(whole, stream)
    before = make()
    _run(before, stream[:cut])
    after = type(before).restore(json.loads(json.dumps(before.snapshot())))
    _run(after, stream[cut:])
    users = {r[0] for r in stream}
    assert _verdicts(after, users) == _verdicts(whole, users)


@pytest.mark.parametrize("make", DETECTORS.values(), ids=DETECTORS.keys())
def test_events_of_counts_every_event_of_a_user(make, stream):
    detector = make()
    _run(detector, stream)
    counts: dict[str, int] = {}
    for row in stream:
        counts[row[0]] = counts.get(row[0], 0) + 1
    assert {u: detector.events_of(u) for u in counts} == counts and detector.events_of("never-seen") == 0


@pytest.mark.parametrize("make", DETECTORS.values(), ids=DETECTORS.keys())
def test_rebuild_from_user_states_keeps_verdicts_and_a_full_flush_equals_an_uninterrupted_run(make, stream):
    cut = (len(stream) // 2) // BATCH * BATCH
    whole = make()
    _run(whole, stream)
    whole.flush(full=True)
    before = make()
    _run(before, stream[:cut])
    users = {r[0] for r in stream[:cut]}
    states = json.loads(json.dumps({u: before.user_state(u) for u in users}))
    after = type(before).from_users(states)
    assert _verdicts(after, users) == _verdicts(before, users)
    _run(after, stream[cut:])
    after.flush(full=True)
    everyone = {r[0] for r in stream}
    assert _verdicts(after, everyone) == _verdicts(whole, everyone)
    assert any(flagged for flagged, _, _ in _verdicts(whole, everyone).values())
