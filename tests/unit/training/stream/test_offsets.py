"""Trained offset ranges: merging, covering, masking, persisting."""

from __future__ import annotations

import json

import numpy as np

from training.stream.offsets import OffsetRanges


def test_offset_ranges_merge_cover_and_mask():
    ranges = OffsetRanges()
    ranges.add("events/0", 0, 99)
    ranges.add("events/0", 100, 149)
    ranges.add("events/0", 300, 399)
    assert ranges.to_dict() == {"events/0": [[0, 149], [300, 399]]}
    assert ranges.covers("events/0", 10, 149) and not ranges.covers("events/0", 100, 300)
    assert not ranges.covers("events/1", 0, 0)
    assert ranges.contains("events/0", np.array([149, 150, 299, 300])).tolist() == [True, False, False, True]
    assert OffsetRanges(json.loads(json.dumps(ranges.to_dict()))).to_dict() == ranges.to_dict()
