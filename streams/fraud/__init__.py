"""Shilling and click-fraud detection: the pure streaming detector, its trust gate and label model.

The stream calls `FraudDetector.update` per event, `flush` per batch and `score` per user;
`streams.fraud.trust` decides which events may train, `streams.fraud.supervised` turns analysts'
labels into a ranking model. Nothing in this package (except `main.py`, the CLI) may import
faust, kafka, mlflow or prometheus_client.
"""

from streams.fraud.config import DetectorConfig
from streams.fraud.detector import FraudDetector
from streams.fraud.verdict import DETECTOR_VERSION, Verdict

__all__ = ["DETECTOR_VERSION", "DetectorConfig", "FraudDetector", "Verdict"]
