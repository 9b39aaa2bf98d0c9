"""Inpainting in the window: every source puts the picture in Inpaint mode at its own size; the
request carries the mask and options; outpainting extends and masks; the mask survives a
restart; parameters of an inpainted picture restore the options and the mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QColor, QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog, QMenu

from app.jobs import FinishedImage
from app.picture_view import PictureView
from app.qimages import array_to_qimage
from app.services import Services
from app.settings import load_settings
from app.viewmodel import INPAINT, SKETCH, TXT2IMG
from app.window import MainWindow
from engine.inpaint.outpaint import SEAM_OVERLAP
from engine.output import save_png_to
from tests.app.fake_engine import FakeEngine, MemorySaver
from tests.app.gallery_browser_helpers import record

INPAINTED = (
    "a lighthouse at dusk\nSteps: 12, Sampler: Euler a, CFG scale: 5.5, Seed: 4242, "
    "Size: 96x64, Denoising strength: 0.6, Mask blur: 6, Masked content: latent noise, "
    "Inpaint area: Only masked, Masked area padding: 40, Version: latentdesk 0.1"
)


def new_window(qtbot, tmp_path: Path) -> MainWindow:
    services = Services(lambda: FakeEngine(), MemorySaver())
    path = tmp_path / "settings.json"
    w = MainWindow(load_settings(path).settings, tmp_path / "gallery", services, path)
    qtbot.addWidget(w)
    w.show()
    return w


@pytest.fixture
def window(qtbot, tmp_path):
    w = new_window(qtbot, tmp_path)
    yield w
    w.close()


def picture(width: int = 96, height: int = 64) -> np.ndarray:
    """A picture with a left half and a right half, so placement can be checked."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 2] = (200, 30, 30)
    array[:, width // 2 :] = (30, 30, 200)
    return array


def assert_inpainting(window: MainWindow, array: np.ndarray) -> None:
    h, w = array.shape[:2]
    assert window.params.mode == INPAINT and window.controls.mode.currentData() == INPAINT
    assert (window.params.width, window.params.height) == (w, h)
    assert (window.canvas.to_array() == array).all()  # at its own size: nothing cropped
    assert window.canvas.mask_array().shape == (h, w) and window.canvas.mask_array().max() == 0
    assert window.canvas.editing_mask and window.sketch.mask_bar.isVisible()


def test_inpaint_this_in_the_session_strip(qtbot, window):
    array = picture()
    window.gallery.add_image(FinishedImage(array, 1, "", None))
    menu: QMenu = window.gallery.build_menu(window.gallery.item(0))
    action = next(a for a in menu.actions() if a.text() == "Inpaint this")
    action.trigger()
    assert_inpainting(window, array)
    window.canvas.undo()  # one step takes the picture and its size back
    assert window.params.mode == INPAINT and (window.params.width, window.params.height) == (
        512,
        512,
    )


def test_inpaint_this_in_the_gallery_browsers_large_view(qtbot, window, tmp_path):
    array = picture()
    path = save_png_to(tmp_path / "p.png", array, INPAINTED)
    window.show_gallery_browser()
    view: PictureView = window.gallery_browser.view
    view.show_picture(record(path, path.stat().st_mtime))
    assert view.inpaint_button.isEnabled()
    view.inpaint_button.click()  # acts once the file is read
    qtbot.wait_until(lambda: window.params.mode == INPAINT, timeout=5000)
    assert_inpainting(window, array)


def test_the_last_result_in_inpaint_mode(qtbot, window):
    array = picture(64, 80)
    window.preview.set_image(array_to_qimage(array))
    window.params.mode = INPAINT
    window.sketch.use_result_button.click()
    assert_inpainting(window, array)
    window.params.mode = SKETCH  # in Sketch mode the result is the sketch, at the set size
    window.sketch.use_result_button.click()
    assert window.params.mode == SKETCH and window.canvas.to_array().shape == (80, 64, 3)


def test_file_open_to_inpaint(qtbot, window, tmp_path, monkeypatch):
    array = picture(88, 64)
    path = save_png_to(tmp_path / "open.png", array, "")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    window.open_image_to_inpaint()
    qtbot.wait_until(lambda: window.params.mode == INPAINT, timeout=5000)
    assert_inpainting(window, array)


def test_a_file_dropped_on_the_canvas_in_inpaint_mode(qtbot, window, tmp_path):
    array = picture(64, 96)
    path = save_png_to(tmp_path / "onto-canvas.png", array, "")
    window.params.mode = INPAINT
    window.open_dropped(str(path))  # what the canvas's file_dropped is connected to
    qtbot.wait_until(lambda: window.params.height == 96, timeout=5000)
    assert_inpainting(window, array)


def test_paste_in_inpaint_mode(qtbot, window):
    array = picture(64, 64)
    QGuiApplication.clipboard().setImage(array_to_qimage(array))
    window.params.mode = INPAINT
    window.paste_image()
    assert_inpainting(window, array)


def test_a_dropped_picture_offers_inpaint_this(qtbot, window, tmp_path):
    array = picture()
    path = save_png_to(tmp_path / "dropped.png", array, INPAINTED)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    assert window.offer_dropped(mime)
    qtbot.wait_until(lambda: window.picture_offers.dialog is not None, timeout=5000)
    dialog = window.picture_offers.dialog
    labels = " ".join(label.text() for label in dialog.findChildren(type(window.model_label)))
    assert "Inpaint (it was inpainted)" in labels
    dialog.inpaint_button.click()
    assert_inpainting(window, array)


def test_a_large_picture_is_inpainted_at_the_nearest_size_the_engine_makes(qtbot, window):
    image = QImage(3000, 1003, QImage.Format.Format_RGB32)
    image.fill(QColor(10, 200, 10))
    window.inpaint.inpaint(image)
    assert (window.params.width, window.params.height) == (2048, 688)
    assert window.canvas.to_array().shape == (688, 2048, 3)
    assert "nearest size" in window.statusBar().currentMessage()


def paint_mask(window: MainWindow) -> np.ndarray:
    mask = np.zeros((window.params.height, window.params.width), np.uint8)
    mask[10:30, 20:50] = 255
    window.canvas.set_mask_array(mask)
    return mask


def test_the_request_carries_the_picture_the_mask_and_the_options(qtbot, window, monkeypatch):
    sent = []
    monkeypatch.setattr(window.controller, "generate", lambda req, _: sent.append(req) or 1)
    window.model.name = "fake"
    array = picture()
    window.inpaint.inpaint(array_to_qimage(array))
    mask = paint_mask(window)
    c = window.controls
    c.inpaint.blur.setValue(9)
    c.inpaint.content.setCurrentIndex(c.inpaint.content.findData("fill"))
    c.inpaint.area.setCurrentIndex(c.inpaint.area.findData("masked"))
    assert c.inpaint.padding.isEnabled()
    c.inpaint.padding.setValue(48)
    c.strength.set_value(0.4)
    assert window.generate() == 1
    request = sent[0]
    assert (request.init_image == array).all() and (request.mask == mask).all()
    assert (request.width, request.height, request.strength) == (96, 64, 0.4)
    assert (request.mask_blur, request.masked_content) == (9, "fill")
    assert (request.inpaint_area, request.inpaint_padding) == ("masked", 48)
    window.params.mode = SKETCH  # the mask is kept, but not sent
    window.generate()
    assert sent[1].mask is None and sent[1].init_image is not None
    window.params.mode = INPAINT
    assert (window.canvas.mask_array() == mask).all()


def test_an_empty_mask_is_refused_before_a_job_is_queued(qtbot, window, monkeypatch):
    sent = []
    monkeypatch.setattr(window.controller, "generate", lambda req, _: sent.append(req) or 1)
    window.model.name = "fake"
    window.inpaint.inpaint(array_to_qimage(picture()))
    assert window.generate() is None and not sent
    assert "nothing to repaint" in window.last_error and "brush" in window.last_error


def test_outpaint_extends_the_picture_and_masks_the_new_area(qtbot, window):
    array = picture()
    window.inpaint.inpaint(array_to_qimage(array))
    old = paint_mask(window)
    window.inpaint.ask_outpaint()
    dialog = window.inpaint.dialog
    for side, value in (("left", 16), ("top", 0), ("right", 32), ("bottom", 8)):
        dialog.spins[side].setValue(value)
    assert "96 × 64 → 144 × 72" in dialog.summary.text()
    dialog.accept()
    assert (window.params.width, window.params.height) == (144, 72)
    assert window.params.mode == INPAINT
    big, mask = window.canvas.to_array(), window.canvas.mask_array()
    assert big.shape == (72, 144, 3) and (big[0:64, 16:112] == array).all()
    assert (big[:64, :16] == array[:, :1]).all()  # edge colours repeated outwards
    assert (mask[:, :16] == 255).all() and (mask[:, 112:] == 255).all() and (mask[64:] == 255).all()
    inner = mask[0:64, 16:112]
    keep = inner[: 64 - SEAM_OVERLAP, SEAM_OVERLAP : 96 - SEAM_OVERLAP]
    assert (keep == old[: 64 - SEAM_OVERLAP, SEAM_OVERLAP : 96 - SEAM_OVERLAP]).all()
    window.canvas.undo()  # the picture, the mask and the size come back together
    assert (window.params.width, window.params.height) == (96, 64)
    assert (window.canvas.mask_array() == old).all()


def test_outpaint_dialog_refuses_nothing_and_too_much(qtbot, window):
    window.inpaint.ask_outpaint()
    dialog = window.inpaint.dialog
    ok = dialog.buttons.buttons()[0]
    for spin in dialog.spins.values():
        spin.setValue(0)
    assert not ok.isEnabled() and "at least one side" in dialog.summary.text()
    dialog.spins["left"].setValue(2048)
    assert not ok.isEnabled() and "extend by less" in dialog.summary.text()
    dialog.reject()


def test_the_mask_survives_a_restart(qtbot, tmp_path):
    first = new_window(qtbot, tmp_path)
    first.inpaint.inpaint(array_to_qimage(picture()))
    mask = paint_mask(first)
    first.close()  # flushes the sketch store
    second = new_window(qtbot, tmp_path)
    try:
        qtbot.wait_until(lambda: second.canvas.mask_array().max() == 255, timeout=5000)
        assert second.params.mode == INPAINT  # the settings kept the mode
        assert (second.canvas.mask_array() == mask).all()
        assert (second.canvas.to_array() == picture()).all()
    finally:
        second.close()


def test_parameters_of_an_inpainted_picture_restore_options_and_mode(qtbot, window):
    window.restore_parameters(INPAINTED)
    p = window.params
    assert p.mode == INPAINT and window.controls.inpaint.blur.isVisible()
    assert (p.mask_blur, p.masked_content, p.inpaint_area, p.inpaint_padding) == (
        6,
        "latent_noise",
        "masked",
        40,
    )
    assert window.controls.inpaint.content.currentText() == "Latent noise"
    window.restore_parameters("a meadow\nSteps: 20, Sampler: Euler, Seed: 7, Size: 64x64")
    assert p.mode == TXT2IMG and not window.controls.inpaint.blur.isVisible()


def test_the_canvas_title_says_what_it_is_for(qtbot, window):
    window.params.mode = INPAINT
    assert "inpaint" in window.sketch_title.text().lower()
    window.params.mode = SKETCH
    assert "Sketch to image" in window.sketch_title.text()


def test_the_inpaint_options_are_named_and_follow_strength_in_the_tab_order(qtbot, window):
    from app.accessibility import _focus_chain

    window.params.mode = INPAINT
    names = [w.objectName() for w in _focus_chain(window.controls) if w.objectName()]
    order = ["strengthSpin", "maskBlurSpin", "maskedContentCombo", "inpaintAreaCombo"]
    assert [names.index(n) for n in order] == sorted(names.index(n) for n in order)
    assert names.index("inpaintAreaCombo") < names.index("seedSpin")
    assert window.controls.inpaint.blur.accessibleName() == "Mask blur in pixels"
    assert window.sketch.mask_bar.invert_button.accessibleName() == "Invert mask"
