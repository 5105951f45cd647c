"""Front door of the fraud detectors for the stream integrator: re-exports the pure core in `streams.fraud`.

It must never import faust, kafka or prometheus: agents import this, not the other way round.
"""
from streams.fraud import DETECTOR_VERSION, DetectorConfig, FraudDetector, Verdict

__all__ = ["DETECTOR_VERSION", "DetectorConfig", "FraudDetector", "Verdict"]
