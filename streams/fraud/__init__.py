"""Shilling and click-fraud detection: pure per-event core (features, MinHash, combiner, detector).

Nothing in this package may import faust, kafka, mlflow or prometheus_client.
"""

from streams.fraud.detector import DETECTOR_VERSION, DetectorConfig, FraudDetector, Verdict

__all__ = ["DETECTOR_VERSION", "DetectorConfig", "FraudDetector", "Verdict"]
