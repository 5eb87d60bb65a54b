"""The settings form: one widget per setting of the table, of the setting's kind, whose values round-trip
through TrainConfig and QSettings."""

from __future__ import annotations

from dataclasses import fields

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLabel, QLineEdit, QSpinBox

from desktop.settings_form import SettingsForm, settings_key, widget_for
from desktop.widgets import FolderField
from training.engine.settings import TRAIN_SETTINGS, TrainConfig, setting

ALL = tuple(s.name for s in TRAIN_SETTINGS)


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def make_form(qtbot, names=ALL) -> SettingsForm:
    form = SettingsForm(names)
    qtbot.addWidget(form)
    return form


def expected_kind(s) -> type:
    if s.choices:
        return QComboBox
    if s.kind is bool:
        return QCheckBox
    if s.kind is int:
        return QSpinBox
    if s.kind is float:
        return QDoubleSpinBox if s.decimals else QLineEdit
    return FolderField if s.folder else QLineEdit


def test_every_setting_of_the_table_gets_a_widget_of_its_kind(qtbot):
    form = make_form(qtbot)
    assert list(form.widgets) == [f.name for f in TRAIN_SETTINGS] and set(form.widgets) == {f.name for f in fields(TrainConfig)}
    kinds = {type(form.widgets[s.name]) for s in TRAIN_SETTINGS}
    assert {QComboBox, QCheckBox, QSpinBox, QDoubleSpinBox, QLineEdit, FolderField} <= kinds  # every kind is used
    for s in TRAIN_SETTINGS:
        widget = form.widgets[s.name]
        assert type(widget) is expected_kind(s), s.name
        assert widget.objectName() == s.name and widget.toolTip() == s.tip()
        if isinstance(widget, QCheckBox):
            assert widget.text() == s.label and widget.isChecked() is s.default
        else:  # a labelled row: the table's words
            assert form.form.labelForField(widget).text() == s.label
        if isinstance(widget, FolderField):  # the row's label only; Browse… says which setting it asks for
            assert widget.findChild(QLabel) is None and widget.dialog_title == f"{s.label.rstrip(':')}: choose a folder"
            assert widget.edit.placeholderText() == s.auto
        if isinstance(widget, QComboBox):
            assert [widget.itemText(i) for i in range(widget.count())] == list(s.choices)
            assert widget.currentText() == s.default
        if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            low, high = s.range
            assert widget.maximum() == high
            if s.auto:  # one step below the range: "auto", the value left to the trainer (None)
                assert widget.minimum() < low and widget.specialValueText() == s.auto
            else:
                assert widget.minimum() == low and widget.specialValueText() == ""
            assert widget.suffix() == s.suffix
    # what the form shows before anything is set: the table's defaults (epochs: no default, left to the caller)
    shown = form.values()
    assert {name: shown[name] for name in ALL if name != "epochs"} == {
        name: setting(name).default for name in ALL if name != "epochs"}


def test_values_round_trip_through_train_config_and_qsettings(qtbot, settings):
    form = make_form(qtbot)
    config = TrainConfig(data="/data/faces", out="/runs/r1", epochs=7, batch_size=5, backbone="vgg16", input_size=64,
                         learning_rate=2.5e-4, weights="none", tutorial_exact=True, augment=False, cache="stream",
                         mixed_precision=False, strict=True, seed=42, resume="/runs/r0", patience=0, freeze=3,
                         time_limit=12.5, devices="all", from_model="/runs/r0/best.keras")
    assert all(getattr(config, f.name) != f.default for f in fields(TrainConfig) if f.name != "data")  # all changed
    form.set_config(config)
    assert form.config() == config
    form.save(settings)
    assert settings.value(settings_key("backbone")) == "vgg16" and settings_key("epochs") == "train/epochs"

    again = make_form(qtbot)
    again.restore(settings)
    assert again.config() == config
    settings.sync()
    reread = make_form(qtbot)  # through the INI file's text ("true", "12.5")
    reread.restore(QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert reread.config() == config

    # "auto" (None) round-trips too, and the fields given override the form's
    autos = TrainConfig(data="d", input_size=None, learning_rate=None, patience=None, time_limit=None)
    again.set_config(autos)
    assert [again.value(n) for n in ("input_size", "learning_rate", "patience", "time_limit")] == [None] * 4
    again.save(settings)
    restored = make_form(qtbot)
    restored.restore(settings)
    assert restored.config(data="d", epochs=None) == autos
    assert restored.widgets["input_size"].text() == setting("input_size").auto


def test_restore_falls_back_on_defaults_for_nonsense_and_calls_late_defaults_last(qtbot, settings):
    settings.setValue("train/backbone", "no-such-net")
    settings.setValue("train/weights", "tiny")
    settings.setValue("train/batch_size", "eight")
    settings.setValue("train/input_size", 0)  # what an older version saved for "auto"
    settings.setValue("train/augment", "maybe")
    form = make_form(qtbot, ("epochs", "backbone", "batch_size", "input_size", "weights", "augment"))
    seen = []
    form.restore(settings, {"epochs": lambda: seen.append(form.value("backbone")) or 33})
    assert form.values() == {"epochs": 33, "backbone": setting("backbone").default, "batch_size": setting("batch_size").default,
                             "input_size": None, "weights": "auto", "augment": True}
    assert seen == [setting("backbone").default]  # the callable ran after the backbone was restored


def test_a_typed_number_that_is_not_one_is_refused_with_the_settings_name(qtbot):
    form = make_form(qtbot, ("learning_rate",))
    edit = form.widgets["learning_rate"]
    assert edit.placeholderText() == setting("learning_rate").auto
    edit.setText("1,5e-3")  # a decimal comma is read as a point
    assert form.value("learning_rate") == 1.5e-3
    for text in ("fast", "-1e-3", "0", "nan", "100"):
        edit.setText(text)
        with pytest.raises(ValueError, match=f"Learning rate must be a positive number .*not '{text}'"):
            form.values()


def test_changes_are_signalled_and_rows_can_be_inserted(qtbot):
    form = make_form(qtbot, ("batch_size", "weights", "augment", "learning_rate"))
    changes = []
    form.changed.connect(lambda: changes.append(1))
    form.widgets["batch_size"].setValue(3)
    form.widgets["weights"].setCurrentText("none")
    form.widgets["augment"].setChecked(False)
    form.widgets["learning_rate"].editingFinished.emit()
    assert len(changes) == 4
    note = QLabel("note")
    form.insert_row("weights", "Starts from:", note)
    assert form.form.getWidgetPosition(note)[0] == form.form.getWidgetPosition(form.widgets["weights"])[0] + 1
    form.set_enabled(False)
    assert not any(widget.isEnabled() for widget in form.widgets.values())


def test_a_widget_alone_follows_its_setting(qtbot):
    widget = widget_for(setting("time_limit"))
    qtbot.addWidget(widget)
    assert isinstance(widget, QDoubleSpinBox) and widget.decimals() == 1 and widget.text() == "none"
