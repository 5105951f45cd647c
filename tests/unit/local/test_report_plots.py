"""The demo report's pictures are written from the report's own series, empty or not."""

from __future__ import annotations

from streams.local.report_plots import write_plots
from tests.unit.local.test_report_pages import _report


def _series() -> dict:
    return {
        "events": [(0.0, 0.0), (10.0, 7000.0), (20.0, 14000.0)],
        "replayed": [(0.0, 0.0), (10.0, 7000.0), (20.0, 14000.0)],
        "flags": [(0.0, 0, 0), (10.0, 0, 1), (20.0, 91, 1)],
        "exposure": {"undefended": [(0.0, 0.0), (5.0, 0.06)], "defended": [(0.0, 0.0), (5.0, 0.0)]},
    }


def test_write_plots_writes_three_pngs(tmp_path):
    names = write_plots(tmp_path, _report(), _series(), [10.0, 20.0, 35.0])
    assert names == ["timeline.png", "exposure.png", "freshness.png"]
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_plots_copes_with_a_run_that_saw_nothing(tmp_path):
    report = {**_report(), "versions": [], "target_exposure": {**_report()["target_exposure"], "before_attack": None}}
    empty = {"events": [], "replayed": [], "flags": [], "exposure": {}}
    assert write_plots(tmp_path, report, empty, []) == ["timeline.png", "exposure.png", "freshness.png"]
