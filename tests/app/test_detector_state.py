"""The Detect tab's detector state without Qt: loading, the fallbacks (a model that cannot be used gives way
to the pretrained face detector, that to the classic face finder), and the words the tab shows
(``desktop.detector_state``). The real tab is tested in test_detect_tab.py."""

from __future__ import annotations

import pytest

from desktop.detector_state import (
    CLASSIC_NOTICE,
    OPEN_MODEL,
    PRETRAINED,
    PRETRAINED_NOTICE,
    Banner,
    BannerKind,
    DetectorState,
    ModelState,
    status_line,
)


@pytest.fixture
def state() -> DetectorState:
    state = DetectorState()
    state.seen = []  # what a view would have rendered, one entry per change
    state.changed.connect(lambda: state.seen.append((state.state, state.label, state.banner.kind)))
    return state


def test_the_state_is_a_str_enum_that_reads_as_before():
    assert ModelState.MODEL == "model" and ModelState.LOADING == "loading"
    assert f"{ModelState.CLASSIC}" == "classic" and str(ModelState.NONE) == "none"
    assert ModelState("classic") is ModelState.CLASSIC


def test_first_start_without_a_model_uses_the_pretrained_detector_and_says_it_is_not_yet_yours(state):
    assert ModelState("pretrained") is ModelState.PRETRAINED
    state.start_loading(PRETRAINED)
    assert state.state is ModelState.LOADING and state.loading == PRETRAINED
    assert state.label == "Model: starting the pretrained face detector…" and state.status_part() == "model: loading…"
    assert state.banner.kind is BannerKind.BUSY and "pretrained face detector" in state.banner.text
    state.loaded_pretrained()
    assert state.state is ModelState.PRETRAINED and state.model_path is None
    assert state.label == "Model: pretrained (BlazeFace), not yet yours"
    assert state.status_part() == "model: pretrained (BlazeFace), not yet yours"
    assert state.banner == Banner(BannerKind.NOTICE, PRETRAINED_NOTICE, OPEN_MODEL)
    assert "not yet yours" in PRETRAINED_NOTICE and all(step in PRETRAINED_NOTICE for step in ("Collect", "Label", "Train"))
    assert "BlazeFace" in state.tooltip
    assert [kind for _, _, kind in state.seen] == [BannerKind.BUSY, BannerKind.NOTICE]


def test_without_its_weights_the_pretrained_detector_gives_way_to_the_classic_finder_and_says_why(state):
    state.start_loading(PRETRAINED)
    assert state.load_failed(PRETRAINED, "FileNotFoundError: /x/face_detection_full_range.npz: not found") is True
    assert state.loading is None and state.label == "Model: starting the classic face finder…"  # the caller loads it
    assert state.banner.kind is BannerKind.ERROR
    assert state.banner.text == ("<b>The pretrained face detector could not start.</b> FileNotFoundError: "
                                 "/x/face_detection_full_range.npz: not found<br>"
                                 "Detecting with the classic face finder (starting…) instead.")
    state.loaded_classic()  # said again once the classic finder runs, then forgotten
    assert state.state is ModelState.CLASSIC and state.banner.kind is BannerKind.ERROR
    assert "face_detection_full_range.npz" in state.banner.text
    assert state.banner.text.endswith("Detecting with the classic face finder instead.")
    assert state.status_part() == "model: none (classic face finder)"
    state.start_loading(None)
    state.loaded_classic()
    assert state.banner == Banner(BannerKind.NOTICE, CLASSIC_NOTICE, OPEN_MODEL)


def test_a_bad_model_then_no_weights_names_both_once_the_classic_finder_runs(state):
    state.start_loading("/x/notes.keras")
    assert state.load_failed("/x/notes.keras", "not a zip file") is True and state.loading == PRETRAINED
    assert state.load_failed(PRETRAINED, "weights missing") is True and state.loading is None
    state.loaded_classic()
    assert state.banner.text == ("<b>Could not use this model.</b> not a zip file<br>"
                                 "<b>The pretrained face detector could not start.</b> weights missing<br>"
                                 "Detecting with the classic face finder instead.")


def test_a_saved_copy_of_the_pretrained_detector_is_still_not_yours(state):
    state.start_loading("/m/pretrained.keras")
    state.loaded_model("/m/pretrained.keras", pretrained=True)
    assert state.label == "Model: pretrained.keras (pretrained, not yet yours)" and state.state is ModelState.MODEL


def test_the_classic_finder_can_still_be_asked_for_and_says_so(state):
    assert state.state is ModelState.NONE and state.label == "Model: —" and state.status_part() is None
    state.start_loading(None)
    assert state.state is ModelState.LOADING and state.status_part() == "model: loading…"
    assert state.label == "Model: starting the classic face finder…"
    assert state.banner == Banner(BannerKind.BUSY, "Starting the classic face finder (no model yet)…")
    state.loaded_classic()
    assert state.state is ModelState.CLASSIC and state.model_path is None
    assert state.label == "Model: classic face finder (no model)"
    assert state.banner == Banner(BannerKind.NOTICE, CLASSIC_NOTICE, OPEN_MODEL)
    assert state.status_part() == "model: none (classic face finder)"
    assert [kind for _, _, kind in state.seen] == [BannerKind.BUSY, BannerKind.NOTICE]


def test_a_loaded_model_is_named_and_the_banner_goes(state):
    state.start_loading("/runs/run1/best.keras")
    assert state.label == "Model: loading best.keras…"
    assert "Loading model <b>best.keras</b>" in state.banner.text and state.banner.kind is BannerKind.BUSY
    state.loaded_model("/runs/run1/best.keras")
    assert state.state is ModelState.MODEL and state.model_path == "/runs/run1/best.keras"
    assert state.label == "Model: best.keras" and state.tooltip == "/runs/run1/best.keras"
    assert state.banner.kind is BannerKind.HIDDEN and state.status_part() == "model: best.keras"


def test_a_bad_model_at_start_falls_back_to_the_pretrained_detector_and_says_why_twice(state):
    state.start_loading("/x/notes.keras")
    assert state.load_failed("/x/notes.keras", "not a <zip> file") is True  # the caller starts the pretrained one
    assert state.state is ModelState.LOADING and state.loading == PRETRAINED
    assert state.label == "Model: starting the pretrained face detector…"
    assert state.banner.kind is BannerKind.ERROR
    assert state.banner.text == ("<b>Could not use this model.</b> not a &lt;zip&gt; file<br>"
                                 "Detecting with the pretrained face detector (starting…) instead.")
    state.loaded_pretrained()  # the message comes back once the pretrained detector is in, then is forgotten
    assert state.banner.kind is BannerKind.ERROR
    assert state.banner.text.endswith("Detecting with the pretrained face detector (not yet yours) instead.")
    state.start_loading(PRETRAINED)
    state.loaded_pretrained()
    assert state.banner.kind is BannerKind.NOTICE


def test_a_bad_model_later_keeps_the_detector_that_runs(state):
    state.start_loading("/a/good.keras")
    state.loaded_model("/a/good.keras")
    state.start_loading("/b/bad.keras")
    assert state.load_failed("/b/bad.keras", "broken") is False
    assert state.state is ModelState.MODEL and state.model_path == "/a/good.keras"
    assert state.label == "Model: good.keras" and state.status_part() == "model: good.keras"
    assert "Detecting with the previous model (good.keras) instead." in state.banner.text

    classic = DetectorState()
    classic.start_loading(None)
    classic.loaded_classic()
    classic.start_loading("/b/bad.keras")
    assert classic.load_failed("/b/bad.keras", "broken") is False
    assert classic.state is ModelState.CLASSIC and classic.label == "Model: classic face finder (no model)"
    assert "Detecting with the classic face finder instead." in classic.banner.text

    pretrained = DetectorState()
    pretrained.start_loading(PRETRAINED)
    pretrained.loaded_pretrained()
    pretrained.start_loading("/b/bad.keras")
    assert pretrained.load_failed("/b/bad.keras", "broken") is False
    assert pretrained.state is ModelState.PRETRAINED and pretrained.label == "Model: pretrained (BlazeFace), not yet yours"
    assert "Detecting with the pretrained face detector (not yet yours) instead." in pretrained.banner.text


def test_when_the_classic_finder_itself_fails_nothing_runs(state):
    state.start_loading(None)
    assert state.load_failed("", "scikit-image is missing") is False  # no model asked for: no fallback loop
    assert state.state is ModelState.NONE and state.label == "Model: —" and state.status_part() is None
    assert state.banner.kind is BannerKind.ERROR
    assert state.banner.text == ("<b>The classic face finder could not start.</b> scikit-image is missing<br>"
                                 "No face detector is running.")


def test_status_line_names_source_timing_drops_device_and_model():
    assert status_line("face.mp4", False, True, 29.97, (4.06, 9.4), 3, "CPU", "model: best.keras") == (
        "face.mp4: video 30.0 fps  ·  inference 4.1 ms (max 9)  ·  dropped 3  ·  CPU  ·  model: best.keras")
    assert status_line("Camera 0", True, False, 0.0, None, 0, None, None) == (
        "Camera 0: stopped  ·  inference —  ·  dropped 0  ·  device —")
    assert status_line("Camera 1", True, True, 15.0, None, 0, "GPU", None).startswith("Camera 1: camera 15.0 fps")


def test_a_slow_load_says_what_it_is_doing_until_the_model_runs() -> None:
    state = DetectorState()
    state.start_loading("/runs/run1/best.keras")
    state.preparing("preparing best.keras for LiteRT (once per model: converted and checked, about half a minute)…")
    assert state.status_part() == "model: preparing best.keras for LiteRT…"
    assert state.banner.kind is BannerKind.BUSY and state.banner.text.startswith("Preparing best.keras for LiteRT (once")
    state.loaded_model("/runs/run1/best.keras")
    assert state.status_part() == "model: best.keras" and state.banner.kind is BannerKind.HIDDEN
    state.preparing("preparing other.keras for LiteRT")  # a late word from a load that has ended: ignored
    assert state.status_part() == "model: best.keras"
    state.start_loading("/runs/run2/best.keras")
    assert state.status_part() == "model: loading…"  # a new load starts without the old one's words
