"""The round's plots: which rows the accuracy plot shows, and PNGs written only when there is data."""

from __future__ import annotations

from registry.plots import accuracy_plot, accuracy_rows, loss_plot


def test_accuracy_rows_end_with_this_round_and_skip_rows_without_numbers():
    history = [{"version": 1, "hr@10": 0.4, "ndcg@10": 0.2}, {"version": 2, "hr@10": None, "ndcg@10": 0.1}]
    assert accuracy_rows(history, {"hr@10": 0.5, "ndcg@10": 0.3}) == [
        {"version": 1, "hr@10": 0.4, "ndcg@10": 0.2},
        {"version": "this", "hr@10": 0.5, "ndcg@10": 0.3},
    ]
    assert accuracy_rows([], {"hr@10": 0.5}) == []


def test_plots_are_written_only_with_data(tmp_path):
    assert loss_plot({"loss": []}, tmp_path) is None and loss_plot({}, tmp_path) is None
    assert accuracy_plot([], {}, tmp_path) is None
    loss = loss_plot({"loss": [0.9, 0.7, 0.6]}, tmp_path)
    history = accuracy_plot([{"version": 1, "hr@10": 0.4, "ndcg@10": 0.2}], {"hr@10": 0.5, "ndcg@10": 0.3}, tmp_path)
    assert (loss.name, history.name) == ("loss_curve.png", "metric_history.png")
    assert loss.read_bytes()[:8] == history.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
