"""The soak report shows memory across the run, not only at its two ends."""

from __future__ import annotations

from scripts.devtools.bench_soak import render_soak


def test_the_soak_report_lists_memory_samples_spread_over_the_run() -> None:
    samples = [
        {"at_seconds": float(t), "worker_rss_mb": [70.0, 90.0 + t / 100], "learner_rss_mb": 100.0 + t / 10}
        for t in range(0, 3601, 10)
    ]
    result = {
        "seconds": 3600,
        "workers": 2,
        "threads": 1,
        "clients": 8,
        "requests": 1000,
        "requests_per_second": 0.3,
        "start": samples[1],
        "end": samples[-1],
        "peak_worker_rss_mb": 126.0,
        "peak_learner_rss_mb": 460.0,
        "samples": samples,
        "decisions_logged": 1000,
        "log_mb": 0.6,
        "log_bytes_per_decision": 600,
    }
    lines = render_soak(result).splitlines()
    timeline = lines[lines.index("memory over the run (largest worker / learner, MB):") + 1 :]
    assert len(timeline) >= 7
    assert timeline[0].split() == ["0", "s", "90.0", "/", "100.0"]
    assert timeline[-1].split() == ["3600", "s", "126.0", "/", "460.0"]
