"""The stream trainer: announced window files → clean interactions → warm-start round → report → commit.

Pure modules (no Kafka, Prometheus or MLflow imports): `offsets`, `quarantine`, `cleaning`,
`holdout`, `state` (files only), `trainer`, `loop`, `files`. Adapters at the edge: `kafka_source`
(kafka-python) and `metrics` (prometheus_client); `training.main` wires them together. This package
must never import an adapter from a pure module, nor anything of `registry`.
"""
