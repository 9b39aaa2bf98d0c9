"""Every control reachable with Tab and named for screen readers, in the form's order."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from app.accessibility import is_interactive
from app.services import Services
from app.settings import Settings
from app.window import MainWindow
from tests.app.fake_engine import FakeEngine, MemorySaver, write_fake_checkpoint


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(Settings(), tmp_path / "g", Services(FakeEngine, MemorySaver()), tmp_path / "s")
    qtbot.addWidget(w)
    w.show()
    with qtbot.wait_signal(w.controller.model_loaded, timeout=5000):
        w.load_model(str(write_fake_checkpoint(tmp_path / "tiny.safetensors")))
    yield w
    w.close()


def _chain_from(start: QWidget) -> list[QWidget]:
    chain, widget = [start], start.nextInFocusChain()
    while widget is not start and widget is not None and len(chain) < 2000:
        chain.append(widget)
        widget = widget.nextInFocusChain()
    return chain


def test_every_control_is_named_and_in_the_tab_chain(window):
    chain = _chain_from(window.controls.prompt)
    controls = [
        w
        for w in window.findChildren(QWidget)
        if is_interactive(w) and w.isVisible() and w.isEnabled()
    ]
    assert len(controls) > 15
    for widget in controls:
        label = f"{type(widget).__name__} {widget.objectName()!r}"
        assert widget.accessibleName().strip(), f"{label} has no accessible name"
        assert widget in chain, f"{label} is not in the focus chain"
        assert widget.focusPolicy() & Qt.FocusPolicy.TabFocus, f"{label} takes no Tab focus"


def test_tab_order_follows_the_form(window):
    c = window.controls
    expected = [c.prompt, c.negative, c.mode, c.guidance.slider, c.steps.slider,
                c.strength.slider, c.seed, c.preset, c.width_spin, c.height_spin, c.sampler,
                c.batch_size, window.generate_button]  # fmt: skip
    chain = _chain_from(c.prompt)
    positions = [chain.index(w) for w in expected]
    assert positions == sorted(positions), [w.objectName() for w in expected]
    # Generate straight after the last control of the panel: no detour through the sketch.
    panel_controls = [w for w in chain if c.isAncestorOf(w) and is_interactive(w)]
    between = chain[chain.index(panel_controls[-1]) + 1 : chain.index(window.generate_button)]
    assert all(c.isAncestorOf(w) for w in between)  # only a spin box's own editor


def test_tab_key_walks_from_prompt_to_negative(qtbot, window):
    window.activateWindow()
    window.controls.prompt.setFocus()
    qtbot.wait_until(window.controls.prompt.hasFocus)
    qtbot.keyClick(window.controls.prompt, Qt.Key.Key_Tab)
    assert window.controls.negative.hasFocus()
    assert window.controls.prompt.accessibleName() == "Prompt"


def test_the_hires_fix_rows_are_named_and_reachable(window):
    c = window.controls
    c.advanced.set_open(True)
    c.hires.enabled.setChecked(True)
    chain = _chain_from(c.prompt)
    expected = {
        c.hires.enabled: "Hires fix",
        c.hires.scale: "Hires upscale factor",
        c.hires.steps: "Hires steps",
        c.hires.denoise: "Hires denoising strength",
        c.hires.upscaler: "Hires upscaler",
    }
    for widget, name in expected.items():
        assert widget.accessibleName() == name
        assert widget in chain and widget.isEnabled()
