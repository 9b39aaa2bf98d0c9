"""A long run on one Engine leaks no memory, threads or file handles (40 jobs here; the full
200 in tests/benchmarks/long_run.py)."""

from __future__ import annotations

from tests.benchmarks.long_run import run

COUNT = 40
# Measured on the CPU (float32, 64x64): +0.6 MB over 200 jobs, threads and fds unchanged. A leak
# of one 64x64 image per job would add ~0.5 MB per 40; of the latents per step, far more.
RSS_BOUND_MB = 12.0


def test_many_jobs_keep_memory_threads_and_files_flat(tmp_path):
    before, after = run(COUNT, tmp_path)
    assert after.threads <= before.threads
    assert after.open_files <= before.open_files
    assert after.rss_mb - before.rss_mb < RSS_BOUND_MB, (before, after)
    # 10 warm-up jobs + COUNT, every fifth cancelled (no file), the others saved.
    assert len(list((tmp_path / "out").glob("*.png"))) == (10 + COUNT) * 4 // 5
