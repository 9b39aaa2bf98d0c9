"""One way to write sizes and durations, shared by the CLI, the downloader and the window."""

from engine.units import human_duration, human_size


def test_sizes_read_as_the_hub_writes_them():
    assert human_size(4_265_146_304) == "4.27 GB"
    assert human_size(812_000_000) == "812 MB"
    assert human_size(43_650_000) == "43.6 MB"
    assert human_size(1_000) == "1.00 kB"
    assert human_size(999) == "999 bytes"
    assert human_size(2.5e15) == "2500 TB"


def test_durations_never_say_zero_of_work_still_going():
    assert human_duration(0.2) == "<1 s"
    assert human_duration(0) == "0 s"
    assert human_duration(42) == "42 s"
    assert human_duration(87) == "1 min 27 s"
    assert human_duration(7500) == "2 h 5 min"
