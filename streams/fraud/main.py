"""Click commands of fraud detection: `advrec attack`, `advrec eval-detection` and `advrec label`.

Thin composition roots: parse options, read files with `streams.sources.datasets.read_ratings`, call the pure
core (`streams.sources.attacks`, `streams.fraud.evaluation`) and write JSON, or send records with
`streams.kafka.producer`. They must never hold detection logic.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable

import click

from streams.sources.attacks import STYLES, TIMINGS

__all__ = ["attack", "eval_detection", "label", "write_jsonl", "send_kafka", "sink_for"]


def write_jsonl(events: Iterable[dict], path: str) -> int:
    """Write event dicts one JSON object per line ('-' = stdout); return how many."""
    out = sys.stdout if path == "-" else open(path, "w", encoding="utf-8")
    n = 0
    try:
        for ev in events:
            out.write(json.dumps(ev, separators=(",", ":")) + "\n")
            n += 1
    finally:
        if out is not sys.stdout:
            out.close()
    return n


def send_kafka(events: Iterable[dict], topic: str) -> int:
    """Send event dicts to `topic` (empty = ADVREC_EVENTS_TOPIC) on the configured broker, key = user_id."""
    from streams.contract.settings import Settings
    from streams.kafka.address import resolve_bootstrap
    from streams.kafka.producer import produce_events
    from streams.kafka.topics import ensure_topics

    settings = Settings()
    bootstrap = resolve_bootstrap(settings)
    topic = topic or settings.events_topic
    ensure_topics(bootstrap, [topic], settings.topic_partitions, settings.replication_factor)
    return produce_events(bootstrap, topic, events)


# Event sinks by scheme; each takes (events, target) -> count. `--out kafka:[TOPIC]` picks "kafka".
SINKS: dict[str, Callable[[Iterable[dict], str], int]] = {"jsonl": write_jsonl, "kafka": send_kafka}


def sink_for(out: str) -> tuple[str, str]:
    """(sink name, target) of an `--out` value: `kafka:[TOPIC]`, else a JSONL path ('-' = stdout)."""
    if out == "kafka" or out.startswith("kafka:"):
        return "kafka", out[len("kafka:") :]
    return "jsonl", out


TIMING_HELP = (
    "When attackers act: spread = uniform over the span, mimic = a genuine user's time pattern, "
    "bunched = each attacker in a quick run (the old behaviour), waves = a few bursts (click farms)."
)


@click.command("attack")
@click.option(
    "--ratings",
    "ratings_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Genuine data the attacker knows (user item rating [timestamp]).",
)
@click.option("--type", "kind", default=None, help="random|average|bandwagon|segment|reverse_bandwagon|click_farm|bot")
@click.option("--attack-size", type=float, default=0.05, show_default=True, help="Attackers / genuine users.")
@click.option("--filler-size", type=float, default=0.03, show_default=True, help="Filler items / all items.")
@click.option(
    "--inject",
    default=None,
    help="TYPE:ATTACK_SIZE:FILLER_SIZE instead of --type/--attack-size/--filler-size; TYPE may be gan, the learned "
    "attacker (its generator is trained on --ratings first: minutes on ML-100K).",
)
@click.option(
    "--steps", type=click.IntRange(min=0), default=400, show_default=True, help="gan: generator training steps."
)
@click.option(
    "--target", "targets", multiple=True, help="Target item id (repeatable); default: one picked by the model."
)
@click.option("--nuke", is_flag=True, help="Demote the target instead of pushing it.")
@click.option("--timing", type=click.Choice(TIMINGS), default="spread", show_default=True, help=TIMING_HELP)
@click.option("--style", type=click.Choice(STYLES), default="standard", show_default=True, help="Rating generator.")
@click.option("--start-ts", type=float, default=None, help="Start of the injection span (epoch s).")
@click.option(
    "--span-s",
    type=float,
    default=None,
    help="Length of the injection span, seconds; default: the data's whole span (bunched: its last 24 h), "
    "or from --start-ts 24 h.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    "out_path",
    default="-",
    show_default=True,
    help="Events JSONL file ('-' = stdout), or kafka:[TOPIC] to send them to the configured broker "
    "(default topic ADVREC_EVENTS_TOPIC, key = user_id).",
)
@click.option(
    "--labels-out", type=click.Path(dir_okay=False), required=True, help="Ground truth: `user_id 1 attack_type` lines."
)
def attack(
    ratings_path,
    kind,
    attack_size,
    filler_size,
    inject,
    steps,
    targets,
    nuke,
    timing,
    style,
    start_ts,
    span_s,
    seed,
    out_path,
    labels_out,
):
    """Generate a profile-injection or click-fraud attack as event JSONL, labels in a separate file."""
    from streams.sources.attacks import AttackSpec, parse_inject, plan_attack, summarize
    from streams.sources.datasets import read_ratings

    if (kind is None) == (inject is None):
        raise click.UsageError("say either --type or --inject")
    if inject is not None:
        try:
            parsed = parse_inject(inject)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--inject") from exc
        kind, attack_size, filler_size = parsed.kind, parsed.attack_size, parsed.filler_size
    ratings = read_ratings(ratings_path)
    pop = summarize(ratings)
    if start_ts is None and pop.ts_max == 0.0:  # a file without timestamps: attack "now"
        import time

        span_s = span_s or 86_400.0
        start_ts = time.time() - span_s
    try:
        spec = AttackSpec(
            kind.replace("-", "_"),
            attack_size,
            filler_size,
            tuple(targets),
            push=not nuke,
            start_ts=start_ts,
            span_s=span_s,
            timing=timing,
            style=style,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if spec.kind == "gan":  # the learned attacker (streams.adversary): trained here, then it writes the profiles
        from streams.adversary.learner import generate_attack

        plan = generate_attack(ratings, targets, attack_size, filler_size, seed, steps, spec=spec)
    else:
        plan = plan_attack(spec, pop, seed)
    sink, target = sink_for(out_path)
    n = SINKS[sink](plan.events(), target)
    with open(labels_out, "w", encoding="utf-8") as fh:
        for user, y, k in plan.labels():
            fh.write(f"{user} {y} {k}\n")
    click.echo(json.dumps({"events": n, "attackers": len(plan.users), "targets": plan.targets}), err=True)


@click.command("eval-detection")
@click.option("--ratings", "ratings_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="`user label` lines, 1 (or fraud) = attacker, 0 (or genuine); attackers' out-of-scale ratings are clipped.",
)
@click.option(
    "--inject", "injects", multiple=True, help="TYPE:ATTACK_SIZE:FILLER_SIZE, e.g. average:0.05:0.03 (repeatable)."
)
@click.option("--timing", type=click.Choice(TIMINGS), default="spread", show_default=True, help=TIMING_HELP)
@click.option("--style", type=click.Choice(STYLES), default="standard", show_default=True, help="Rating generator.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--flush-every",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Events per batch: the detector flushes, and streaming figures are taken, at each batch close.",
)
@click.option(
    "--folds",
    type=click.IntRange(min=2),
    default=None,
    help="Also measure the supervised model by stratified k-fold cross-validation on the labels (SDLib's protocol).",
)
@click.option("--baselines", is_flag=True, help="Also score RDMA alone and DegSim alone on the same data.")
def eval_detection(ratings_path, labels_path, injects, timing, style, seed, flush_every, folds, baselines):
    """Replay a ratings file (plus injected attacks) through the fraud detector; the last line is the metrics JSON."""
    from streams.fraud.evaluation import evaluate, read_labels
    from streams.sources.attacks import parse_inject
    from streams.sources.datasets import read_ratings

    try:
        specs = [parse_inject(text, timing=timing, style=style) for text in injects]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--inject") from exc
    labels = read_labels(labels_path) if labels_path else None
    try:
        result = evaluate(
            read_ratings(ratings_path),
            labels,
            specs,
            seed=seed,
            flush_every=flush_every,
            folds=folds,
            baselines=baselines,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(json.dumps({"timing": timing, "seed": seed, **result}))


@click.command("label")
@click.argument("user_id")
@click.option("--fraud/--genuine", "is_fraud", default=None, help="The analyst's verdict on the user.")
@click.option("--analyst", default="anonymous", show_default=True, help="Who decided.")
@click.option("--topic", default="", help="Topic to send to (default ADVREC_FRAUD_LABELS_TOPIC).")
def label(user_id, is_fraud, analyst, topic):
    """Send an analyst's label (FraudLabel, key = user id) to `fraud.labels`."""
    import time

    import msgspec

    from streams.contract.records import FraudLabel
    from streams.contract.settings import Settings
    from streams.kafka.address import resolve_bootstrap
    from streams.kafka.producer import produce_events
    from streams.kafka.topics import ensure_topics

    if is_fraud is None:
        raise click.UsageError("say --fraud or --genuine")
    record = FraudLabel(user_id=user_id, label="fraud" if is_fraud else "genuine", analyst=analyst, ts=time.time())
    settings = Settings()
    bootstrap = resolve_bootstrap(settings)
    topic = topic or settings.fraud_labels_topic
    ensure_topics(
        bootstrap,
        [topic],
        settings.topic_partitions,
        settings.replication_factor,
        compacted=settings.compacted_topics,
    )
    produce_events(bootstrap, topic, [msgspec.to_builtins(record)])
    click.echo(json.dumps(msgspec.to_builtins(record)))
