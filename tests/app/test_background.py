"""desktop.background.LatestOnly: only the latest job's answer reaches the UI thread."""

from __future__ import annotations

import threading

from desktop.background import LatestOnly


def test_only_the_latest_jobs_answer_is_reported_and_a_failure_is_a_message(qtbot):
    reader = LatestOnly()
    answers: list[tuple[object, str]] = []
    reader.done.connect(lambda result, error: answers.append((result, error)))
    release = threading.Event()
    reader.start(lambda: release.wait(5) and "old folder")  # still reading when the user picks another
    assert reader.busy
    reader.start(lambda: "new folder")
    release.set()
    qtbot.waitUntil(lambda: len(answers) == 1, timeout=5000)
    qtbot.wait(50)  # the older job has finished too: its answer was dropped
    assert answers == [("new folder", "")] and not reader.busy

    def fail() -> None:
        raise ValueError("no pictures found")

    reader.start(fail)
    qtbot.waitUntil(lambda: len(answers) == 2, timeout=5000)
    assert answers[1] == (None, "no pictures found")

    reader.start(lambda: "forgotten")
    reader.forget()  # nothing is to be shown any more
    assert not reader.busy
    reader.shutdown()
    qtbot.wait(50)
    assert len(answers) == 2
