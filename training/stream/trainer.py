"""The stream trainer: accumulate announced window batches, train a warm-started round, report, save.

`Trainer` purges flagged users from its replay buffer, continues from the champion (`ChampionSource`:
after a rollback or a manual promotion, the restored champion), drops what must not be trained on
(`cleaning`), holds out trusted users' newest new pairs (`holdout`), trains a copy of its base
model with a bounded replay buffer, measures challenger and champion on the same split, audits
exposure (`training.exposure`), runs the red-team probe every few rounds (`probe`), calls
`on_round(model, report, lineage)`, then saves its state atomically (`state`), the two inside the
injected `commit_section` (the process defers stop signals there). Only a challenger
the gate promotes (or, with no gate, any evaluated one) becomes the next round's base: a rejected
or held one is never trained further. Its ports are here: `Batch`, `BatchSource`, `ChampionSource`,
`Verdict`, `TrainerMetrics`, `RoundResult`. Kafka, Prometheus, MLflow, the text encoder and a probe
attack other than the bandwagon (the learned one) are injected, never imported; it must never hand
a batch back for commit before the round that took it is saved. A model that uses item text (the
hybrid) gets the catalog entries that changed since its base was trained, encoded by the injected
`item_text`.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from streams.contract.records import CatalogEntry
from streams.fraud.trust import TrustPolicy, may_train
from streams.sources.catalog import catalog_frame
from training.bootstrap import ProbeAttack, bandwagon_probe
from training.evaluation import FGSM_EPS, Split
from training.exposure import audit_sample, exposure_audit
from training.frames import is_in
from training.models import MODEL_KINDS, Recommender, build_model, load_recommender
from training.stream.catalog import CatalogUpdate, ItemCatalog
from training.stream.cleaning import (
    INTERACTION_COLUMNS,
    clean_events,
    events_to_interactions,
    hold_untrusted,
    pair_keys,
)
from training.stream.holdout import holdout_split, measure, round_report
from training.stream.probe import due, red_team_probe
from training.stream.quarantine import Quarantine
from training.stream.state import StateStore, TrainerState

__all__ = [
    "TrainerConfig",
    "Batch",
    "RoundResult",
    "TrainerMetrics",
    "BatchSource",
    "ChampionSource",
    "Verdict",
    "OnRound",
    "ItemText",
    "Trainer",
    "trusted_users",
]

log = logging.getLogger(__name__)

# The gate's reason codes (registry/promotion.py) that judge a challenger's recipe, not its data.
WEAK_RECIPE_REASONS = frozenset({"below_floor", "below_popularity", "worse_than_champion", "fgsm_drop"})


@dataclass(frozen=True)
class TrainerConfig:
    """How the stream trainer trains and evaluates a round."""

    model: str = "apr"  # a key of training.models.MODEL_KINDS
    epochs: int = 5  # epochs per round over new window + replay sample
    first_epochs: int = 40  # epochs of a round that starts from scratch (no model yet)
    min_batch_rows: int = 1  # wait for announcements until this many rows are pending
    replay_rows: int = 200_000  # replay buffer cap (newest rows kept)
    eval_users: int = 2_000  # at most this many test users per round (seeded sample)
    negatives: int = 99
    fgsm_eps: tuple[float, ...] = FGSM_EPS
    seed: int = 0
    trust_gate: bool = False  # train only trusted accounts' rows; hold the others (see cleaning.hold_untrusted)
    trust: TrustPolicy = TrustPolicy()  # who may be evaluated and audited (established, never flagged)
    audit_users: int = 500  # the fixed sample of trusted users the exposure audit and the probe look at
    probe_every: int = 5  # the red-team probe runs every this many rounds (0: never; the gate then holds)
    # After a challenger rejected for its accuracy or robustness, fit the next one fresh (False:
    # warm-start from the champion again, the rule before; the baseline of benchmarks/warm_rounds.py)
    fresh_after_reject: bool = True
    probe_share: float = 0.05  # probe attackers, a share of the round's users
    probe_targets: int = 5
    probe_attack: str = "bandwagon"  # the probe's attack: bandwagon, or the one injected as `probe_attack` (gan)
    quarantine: bool = True  # drop suspect and flagged users' events; False: an undefended shadow trainer


@dataclass(frozen=True)
class Batch:
    """An announcement as taken from a source, with its own position there (for the commit)."""

    announcement: Mapping[str, Any]
    topic: str = ""
    partition: int = 0
    offset: int = 0


@dataclass
class RoundResult:
    """What one round did: outcome (success | failure), report, lineage, and counts for metrics."""

    outcome: str
    round: int
    seconds: float
    samples: int = 0
    batches: int = 0
    report: dict = field(default_factory=dict)
    lineage: dict = field(default_factory=dict)


class TrainerMetrics:
    """Where the loop reports what it did; the trainer process plugs Prometheus in (training.stream.metrics)."""

    def round_done(self, result: RoundResult) -> None:
        """A round finished (either outcome)."""

    def batches_consumed(self, n: int) -> None:
        """n batches were taken into a round (or consumed without one)."""

    def pending(self, n: int) -> None:
        """Batches written but not yet consumed."""


class BatchSource(Protocol):
    """Where announcements and fraud flags come from (Kafka in the trainer process)."""

    def poll(self, timeout_s: float) -> tuple[list[Batch], list[tuple[str | None, dict | None]]]: ...

    def commit(self, batches: list[Batch]) -> None: ...

    def backlog(self) -> int: ...

    def catalog_updates(self) -> list[CatalogUpdate]: ...


@dataclass(frozen=True)
class Verdict:
    """What the gate made of a round's model: its action (promote | hold | reject), registered version
    and reasons (each "code: detail", as `registry.promotion.Decision` words them)."""

    action: str
    version: int | None = None
    reasons: tuple[str, ...] = ()

    @property
    def weak_recipe(self) -> bool:
        """Rejected for its accuracy or robustness (not for what its data did): a warm start from
        the base lost to it, and the next challenger is better fitted fresh."""
        return self.action == "reject" and any(r.split(":", 1)[0] in WEAK_RECIPE_REASONS for r in self.reasons)

    @property
    def accepted(self) -> bool:
        """Whether the model becomes the trainer's base."""
        return self.action == "promote"


class ChampionSource(Protocol):
    """Where the served champion is (the registry in the trainer process)."""

    def champion_version(self) -> int | None: ...

    def load_version(self, version: int) -> Recommender: ...


# Returns the gate's Verdict, or None where no gate runs (the model is then accepted).
OnRound = Callable[[Recommender, dict, dict], "Verdict | None"]
# A catalog frame (streams.sources.catalog) -> its row-aligned item vectors and their meta
# (training.text.features.encode_items bound to the configured encoder).
ItemText = Callable[[pd.DataFrame], tuple[np.ndarray, dict]]


def trusted_users(interactions: pd.DataFrame, distrusted: set[str], policy: TrustPolicy) -> set[str]:
    """Users the trust gate trusts on these interactions: established (events, age), never flagged or suspect."""
    facts = interactions.groupby("user")["timestamp"].agg(["size", "min", "max"])
    ages = (facts["max"] - facts["min"]).fillna(0.0)
    return {
        str(user)
        for user, n, age in zip(facts.index, facts["size"], ages)
        if may_train(policy, int(n), float(age), 0.0, str(user) in distrusted)[0]
    }


def _lineage(batches: list[Batch], quarantine: Quarantine, config: TrainerConfig, model: Any, **extra: Any) -> dict:
    """Where a round's model came from: batches, offset ranges, flags, configs."""
    return {
        **extra,
        "batches": [dict(b.announcement) for b in batches],
        "offset_ranges": {
            f"{b.announcement['topic']}/{b.announcement['partition']}": [
                b.announcement["first_offset"],
                b.announcement["last_offset"],
            ]
            for b in batches
        },
        "detector_version": quarantine.detector_version,
        "quarantined_users": len(quarantine.flagged),
        "trainer_config": {**asdict(config), "fgsm_eps": list(config.fgsm_eps)},
        "model_kind": model.kind,
        "model_config": asdict(model.config),
    }


class Trainer:
    """Accumulates announced batches and trains a warm-started round on them."""

    def __init__(
        self,
        config: TrainerConfig,
        store: StateStore,
        read_batch: Callable[[str], pd.DataFrame],
        on_round: OnRound | None = None,
        init_model: str | Path | None = None,
        metrics: TrainerMetrics | None = None,
        item_text: ItemText | None = None,
        champion: ChampionSource | None = None,
        probe_attack: ProbeAttack | None = None,
        commit_section: Callable[[], AbstractContextManager] = nullcontext,
    ) -> None:
        if probe_attack is None and config.probe_attack != "bandwagon":
            raise ValueError(f"probe attack {config.probe_attack!r} must be passed in (training.main wires gan)")
        self.config = config
        self.probe_attack = probe_attack or bandwagon_probe
        self.store = store
        self.read_batch = read_batch
        self.on_round = on_round or (lambda model, report, lineage: None)
        self.init_model = str(init_model) if init_model else None
        self.metrics = metrics or TrainerMetrics()
        self.item_text = item_text
        self.catalog = ItemCatalog()
        self._text_taken: list[CatalogEntry] = []  # catalog entries the running round took
        self.champion = champion
        self.commit_section = commit_section
        self.pending: list[Batch] = []
        self.handled: list[Batch] = []  # taken into a saved round or skipped: safe to commit
        self.state = self._restore()

    def _restore(self) -> TrainerState:
        state = self.store.load()
        if state is not None:
            return state
        model = load_recommender(self.init_model) if self.init_model else None
        return TrainerState(model=model)

    @property
    def pending_rows(self) -> int:
        """Rows announced by the pending batches."""
        return sum(int(b.announcement["rows"]) for b in self.pending)

    def offer(self, batch: Batch) -> bool:
        """Queue a batch for the next round, unless its whole offset range was trained already."""
        a = batch.announcement
        if self.state.trained.covers(f"{a['topic']}/{a['partition']}", a["first_offset"], a["last_offset"]):
            log.info("skipping %s: already trained", a["path"])
            self.handled.append(batch)
            return False
        self.pending.append(batch)
        return True

    def ready(self, idle: bool = False) -> bool:
        """Whether a round should run now: enough rows pending, or anything pending once idle."""
        return bool(self.pending) and (idle or self.pending_rows >= self.config.min_batch_rows)

    def _read(self, batches: list[Batch]) -> pd.DataFrame:
        frames = []
        for b in batches:
            frame = self.read_batch(b.announcement["uri"])
            frames.append(frame.assign(topic=b.announcement["topic"]))
        return pd.concat(frames, ignore_index=True)

    def run_round(self, quarantine: Quarantine) -> RoundResult | None:
        """Train one round on every pending batch; None if nothing was left to train after cleaning."""
        started = time.perf_counter()
        batches, self.pending = self.pending, []
        self._text_taken = []
        try:
            result = self._round(batches, quarantine, started)
        except Exception:
            self.pending = batches + self.pending
            self.catalog.restore(self._text_taken)  # the restored model lacks them: encode them again
            self.state = self._restore()  # the model may be half-trained: back to the saved round
            self.metrics.round_done(RoundResult("failure", self.state.round + 1, time.perf_counter() - started))
            raise
        self.handled.extend(batches)
        self.metrics.batches_consumed(len(batches))
        if result is not None:
            self.metrics.round_done(result)
        return result

    def _continue_from_champion(self, state: TrainerState) -> None:
        """Make the served champion the base: after a rollback or a manual promotion it is not our model."""
        if self.champion is None:
            return
        version = self.champion.champion_version()
        if version is not None and version != state.base_version:
            log.info("continuing from champion version %d (was %s)", version, state.base_version)
            state.model, state.base_version = self.champion.load_version(version), version

    def _train(self, base: Recommender | None, new: pd.DataFrame, replay: pd.DataFrame, flagged: set[str], text: dict):
        """A copy of the base trained one round on the new rows and a replay sample, or, without a
        base, a fresh model fitted on the new rows and the whole replay buffer; the base itself is
        never touched.

        `text`: train_round's item-text arguments (`_item_text`), the same for the probe's copy."""
        cfg = self.config
        if base is None:
            model, epochs = build_model(cfg.model, seed=cfg.seed), cfg.first_epochs
            new, replay = pd.concat([new, replay], ignore_index=True), None
        else:
            model, epochs = copy.deepcopy(base), cfg.epochs
        stats = model.train_round(new, replay, quarantined_users=flagged, epochs=epochs, **text)
        return model, stats, epochs

    def _judge(
        self,
        model: Recommender,
        base: Recommender | None,
        trained_from: Recommender | None,
        split: Split,
        trusted: set[str],
        train_new: pd.DataFrame,
        replay: pd.DataFrame,
        flagged: set[str],
        text: dict,
    ) -> dict[str, Any]:
        """What the gate needs beside the challenger's accuracy: the champion (the base) on the same
        split and audited users, the exposure audit, and the red-team probe when due (else the latest),
        which trains as the challenger did (from `trained_from`: the base, or None when fitted fresh)."""
        cfg, state, out = self.config, self.state, {}
        audited = audit_sample([u for u in trusted if base is None or u in base.users], cfg.audit_users, cfg.seed)
        if base is not None:
            out["champion"] = {**measure(base, split, cfg.fgsm_eps, cfg.seed), "version": state.base_version}
            if state.base_probe_lift is not None:  # the champion's recipe, probed when it was accepted
                out["champion"]["poisoning"] = {"lift": state.base_probe_lift}
            untrusted = set(train_new["user"]) - trusted  # new (not established) or suspicious accounts
            out["exposure"] = exposure_audit(model, base, audited, train_new, untrusted, split.train)
        if due(state.round, state.probe, cfg.probe_every):
            state.probe = red_team_probe(
                lambda poisoned: self._train(trained_from, poisoned, replay, flagged, text)[0],
                model,
                train_new,
                audited,
                cfg.probe_share,
                cfg.probe_targets,
                cfg.seed,
                state.round,
                self.probe_attack,
                cfg.probe_attack,
                histories=split.train,
            )
            out["probe_seconds"] = state.probe["seconds"]
        if state.probe:
            out["poisoning"] = {**state.probe, "age": state.round - state.probe["round"]}
        return out

    def _round(self, batches: list[Batch], quarantine: Quarantine, started: float) -> RoundResult | None:
        cfg, state = self.config, self.state
        raw = self._read(batches)
        if cfg.quarantine:
            flagged = set(quarantine.flagged)
        else:  # undefended: train on everyone, as if no detector had spoken
            flagged, raw = set(), raw.assign(suspect=False)
        suspect = raw["user_id"][raw["suspect"].fillna(False).astype(bool)].astype(str)
        state.distrusted |= flagged | set(suspect)
        # Poison is not carried forward: flagged users' rows leave the replay buffer for good.
        state.history = state.history[~state.history["user"].isin(flagged)].reset_index(drop=True)
        state.carry = state.carry[~state.carry["user"].isin(flagged)].reset_index(drop=True)
        self._continue_from_champion(state)
        events, counts = clean_events(raw, flagged, state.trained, state.history["event_id"])
        new = events_to_interactions(events)
        if cfg.trust_gate:
            new, state.waiting, held = hold_untrusted(
                new, state.waiting, quarantine.trusted, flagged, max_waiting=cfg.replay_rows
            )
            counts.update(held)
        for b in batches:
            a = b.announcement
            state.trained.add(f"{a['topic']}/{a['partition']}", a["first_offset"], a["last_offset"])
        state.recent_batches = (state.recent_batches + [b.announcement["path"] for b in batches])[-1000:]
        if new.empty:
            log.warning(
                "round skipped: all %d rows of %d batches were dropped %s", counts["rows"], len(batches), counts
            )
            self.store.save(state)
            return None

        base = state.model
        # A challenger warm-started from the base that the gate rejected is not tried again from that
        # base: warm rounds from a weak first champion (fitted on the few rows trusted early) lost to
        # it round after round, while their new users ranked from barely trained rows. The next
        # challenger is fitted fresh on every trusted row, and still judged against the base.
        fresh = base is None or state.refit
        history = state.history
        accumulated = pd.concat([history, state.carry, new], ignore_index=True)
        trusted = trusted_users(accumulated, state.distrusted, cfg.trust)
        split = holdout_split(
            base if base is not None else build_model(cfg.model),
            accumulated,
            new,
            cfg.negatives,
            cfg.eval_users,
            cfg.seed,
            state.round,
            trusted,
        )
        held = set(pair_keys(split.test).tolist())
        trained_new = ~is_in(pair_keys(new), held)
        arrival = events.drop_duplicates("event_id").set_index("event_id")["kafka_ts"].astype(float)
        arrivals = arrival.reindex(new["event_id"][trained_new]).dropna().to_numpy()  # released rows: unknown
        carry = state.carry[~is_in(pair_keys(state.carry), held)]
        train_new = pd.concat([new[trained_new], carry], ignore_index=True)
        replay = history[~is_in(pair_keys(history), held)]
        train_started = time.perf_counter()
        log.info(
            "round %d: training on %d new rows of %d batches (%s)",
            state.round + 1,
            len(train_new),
            len(batches),
            "from scratch"
            if base is None
            else f"fitted fresh, judged against version {state.base_version}"
            if fresh
            else f"warm-started from version {state.base_version}",
        )
        text = self._item_text(fresh)
        trained_from = None if fresh else base
        model, stats, epochs = self._train(trained_from, train_new, replay, flagged, text)
        train_seconds = time.perf_counter() - train_started
        state.round += 1
        samples = int(stats["events"] - stats["dropped_quarantined"] + stats["replayed"])
        lineage = _lineage(batches, quarantine, cfg, model, round=state.round)
        lineage["init_model"] = self.init_model
        lineage["base_version"] = state.base_version if base is not None else None
        # Freshness starts at the oldest trained row not yet in an accepted model: a rejected
        # round's rows count when a later model is served, held-out, suspect and repeated ones never.
        oldest = [t for t in (state.pending_arrival, float(np.nanmin(arrivals)) if len(arrivals) else None) if t]
        lineage["oldest_arrival"] = min(oldest) if oldest else None
        lineage["trained_rows"] = int(trained_new.sum())
        # Whose rows this round trained (new, released and carried rows; replayed ones trained before):
        # which versions saw a user, and how much of an attack reached training before its flag.
        lineage["trained_by_user"] = {str(u): int(n) for u, n in train_new["user"].value_counts().items()}
        outcome, report = "failure", {}
        if len(split.test):
            report = round_report(model, split, cfg.fgsm_eps, cfg.seed)
            outcome = "success" if all(math.isfinite(report[k]) for k in ("hr@10", "ndcg@10")) else "failure"
        if outcome == "success":
            report.update(self._judge(model, base, trained_from, split, trusted, train_new, replay, flagged, text))
        report.update(
            round=state.round,
            model=model.kind,
            device=str(model.device),
            rows=counts,
            train=stats,
            samples=samples,
            train_seconds=train_seconds,
            probe_seconds=report.get("probe_seconds", 0.0),
            epochs=epochs,
            epoch_seconds=model.epoch_seconds[-epochs:] if stats["events"] else [],
            base_version=lineage["base_version"],
            fresh=fresh,
        )
        if model.uses_item_text:
            report.update(text_encoder=dict(model.text_encoder), catalog_items=len(self._text_taken))
        # Held-out pairs are trained next round; every kept row joins the replay buffer.
        state.carry = split.test.merge(new, on=["user", "item"]).drop_duplicates(["user", "item"])[INTERACTION_COLUMNS]
        state.history = pd.concat([state.history, new], ignore_index=True).tail(cfg.replay_rows).reset_index(drop=True)
        # A stop signal waits for the section's end: a version registered by on_round is always
        # one the saved state counts, so a restart never trains and registers the round again.
        with self.commit_section():
            verdict = self._settle(state, model, report, lineage, outcome, len(split.test))
            report["verdict"] = verdict.action if verdict is not None else None
            self.store.save(state)
        report["seconds"] = time.perf_counter() - started
        success = outcome == "success"
        return RoundResult(
            outcome, state.round, report["seconds"], samples if success else 0, len(batches), report, lineage
        )

    def _settle(
        self, state: TrainerState, model: Recommender, report: dict, lineage: dict, outcome: str, test_rows: int
    ) -> Verdict | None:
        """Hand an evaluated round to `on_round`; the next base is its model only if it was accepted."""
        if outcome != "success":
            state.pending_arrival = lineage["oldest_arrival"]
            self.catalog.restore(self._text_taken)
            log.warning("round %d trained but could not be evaluated (%d test users)", state.round, test_rows)
            return None
        verdict = self.on_round(model, report, lineage)
        state.refit = self.config.fresh_after_reject and verdict is not None and verdict.weak_recipe
        if verdict is None or verdict.accepted:
            state.model, state.pending_arrival = model, None
            state.base_probe_lift = state.probe.get("lift") if state.probe else None
            if verdict is not None:
                state.base_version = verdict.version
        else:
            state.pending_arrival = lineage["oldest_arrival"]
            self.catalog.restore(self._text_taken)  # the base never saw them: encode them again
            log.warning(
                "round %d: %s, the next round %s",
                state.round,
                verdict.action,
                "is fitted fresh" if state.refit else "continues from the champion",
            )
        return verdict

    def _item_text(self, fresh: bool) -> dict:
        """train_round's text arguments: catalog entries changed since the base was trained (all, fresh)."""
        if not MODEL_KINDS[self.config.model].uses_item_text or self.item_text is None:
            return {}
        if fresh:
            self.catalog.take_changed()
            entries = sorted(self.catalog.entries.values(), key=lambda e: e.item_id)
        else:
            entries = self.catalog.take_changed()
        self._text_taken = entries
        if not entries:
            return {}
        vectors, meta = self.item_text(catalog_frame(entries))
        return {"item_ids": [e.item_id for e in entries], "item_vectors": vectors, "encoder": meta}

    def take_handled(self) -> list[Batch]:
        """Batches whose effect is saved (trained or skipped), for the source to commit; clears the list."""
        handled, self.handled = self.handled, []
        return handled
