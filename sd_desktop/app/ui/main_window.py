"""The main window: the controls on the left, the canvas in the centre, the history on the right.

It builds the parts (ui.controls, ui.canvas_area, ui.history_panel, ui.actions), binds them to one AppState
(sd_desktop.app.state) and opens the dialogs. What the app does lives in the state layer; the worker
thread does everything slow.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QFileDialog, QMainWindow, QMessageBox, QWidget

from sd_desktop.core.families import supported_labels
from sd_desktop.core.request import Mode

from ..state.app import AppState
from ..state.document import read_image_file
from ..state.models import DEMO_KEY
from ..state.preferences import AppSettings
from .actions import WindowActions
from .addons_panel import AddonsPanel
from .canvas_area import CanvasArea
from .controls import ControlsPanel
from .history_panel import HistoryPanel
from .preferences_dialog import PreferencesDialog
from .widgets import ElidedLabel, ElidingStatusBar

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff);;All files (*)"
MODEL_FILTER = "Stable Diffusion models (*.safetensors *.ckpt);;All files (*)"


class MainWindow(QMainWindow):
    """sd-desktop's window. model_path: load this model instead of the last one / the demo;
    model: use this ready StableDiffusionModel (benchmarks); load_model=False: load nothing at start."""

    def __init__(self, *, model_path: str | Path | None = None, model=None, load_model: bool = True,
                 preferences: AppSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("sd-desktop")
        self.setAccessibleName("sd-desktop")
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.state = state = AppState(preferences, parent=self)
        self._closed = False

        self.controls = ControlsPanel(state)
        self.controls.forever_mask = lambda: self.canvas_area.mask()
        state.live.mask = lambda: self.canvas_area.mask()  # (Live mode in Inpaint)
        self.canvas_area = CanvasArea(state)
        self.canvas_area.canvas.maskChanged.connect(state.live.schedule)  # a mask stroke: a new live picture
        self.history = HistoryPanel(state.history)
        self.addons = AddonsPanel(state.addons)
        self.canvas, self.message_bar = self.canvas_area.canvas, self.canvas_area.message_bar
        self.history_list = self.history.list
        self.controls_scroll = self.controls.scroll
        for name in ("model_combo", "mode_tabs", "prompt_panel", "parameters", "interpolation", "generate_button",
                     "prepare_button", "cancel_button", "progress_bar"):
            setattr(self, name, getattr(self.controls, name))
        for name in ("brush_button", "eraser_button", "brush_size_slider", "clear_mask_button", "invert_mask_button"):
            setattr(self, name, getattr(self.canvas_area, name))
        self.prompt_edit = self.prompt_panel.prompt_edit
        self.negative_prompt_edit = self.prompt_panel.negative_edit
        self._lay_out()
        self.actions = WindowActions(self)
        self.actions.build_menus(self)
        self._connect()
        self.parameters.hires_upscaler_combo.set_names(state.upscalers())  # (the models folders' upscalers too)
        self._restore_window()
        if load_model or model is not None:
            state.start(model_path, model)
        else:
            state.refresh_models()
            state.history.load_folder(state.preferences.output_root)

    def _lay_out(self) -> None:
        self.controls_dock = QDockWidget("Controls", self)
        self.controls_dock.setObjectName("controlsDock")
        self.controls_dock.setWidget(self.controls)
        self.controls_dock.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        self.controls_dock.setTitleBarWidget(QWidget())  # a side panel, not a floating palette
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.controls_dock)
        self.history_dock = QDockWidget("History", self)
        self.history_dock.setObjectName("historyDock")
        self.history_dock.setWidget(self.history)
        self.history_dock.setMinimumWidth(140)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.history_dock)
        self.addons_dock = QDockWidget("LoRAs && embeddings", self)
        self.addons_dock.setObjectName("addonsDock")
        self.addons_dock.setWidget(self.addons)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.addons_dock)
        self.tabifyDockWidget(self.history_dock, self.addons_dock)
        self.history_dock.raise_()
        self.setCentralWidget(self.canvas_area)
        self.setStatusBar(ElidingStatusBar())
        self.model_status = ElidedLabel("No model")
        self.model_status.setObjectName("modelStatus")
        self.statusBar().addPermanentWidget(self.model_status)
        self.resize(1400, 880)

    def _connect(self) -> None:
        state, session = self.state, self.state.session
        state.status.connect(self._status)
        state.wants.connect(lambda what: {"open_model": self.open_model_dialog,
                                          "preferences": self.show_preferences}[what]())
        session.modelLoaded.connect(self._model_loaded)
        session.modelUnloaded.connect(lambda: self.model_status.setText("No model"))
        session.modelUnloaded.connect(lambda: self.addons.set_model(None))
        session.modelUnloaded.connect(lambda: self.controls.parameters.name_what_the_model_says({}))
        state.generation.mode_changed.connect(self._mode_changed)
        state.interpolation.exported.connect(self._exported)
        self.generate_button.clicked.connect(self.generate)
        history = self.history
        history.showRequested.connect(state.show_file)
        history.useAsInitRequested.connect(state.use_as_init_image)
        history.interpolationRequested.connect(lambda path, letter: state.set_interpolation_image(letter, path))
        history.copyRequested.connect(self.copy_file_image)
        history.saveAsRequested.connect(self.save_file_as)
        history.restoreRequested.connect(state.restore_parameters_from)
        history.reuseSeedRequested.connect(state.reuse_seed_of)
        history.openFolderRequested.connect(lambda path: self.show_folder(Path(path).parent))
        self.prompt_panel.imagePasted.connect(self.paste_image)
        history.deleteRequested.connect(self.delete_result)
        history.batchRequested.connect(self.show_history_batch)
        history.group_button.setChecked(state.preferences.q.value("history/group", False, type=bool))
        history.group_button.toggled.connect(lambda on: state.preferences.q.setValue("history/group", on))
        self.addons.insertRequested.connect(self.prompt_edit.insert_snippet)
        self.addons.emphasis = lambda: self.state.generation.emphasis
        state.addons.changed.connect(lambda: self.prompt_edit.set_completions(state.addons.names("lora")))
        for letter in "AB":
            slot = self.interpolation.slot(letter)
            slot.fromCanvasRequested.connect(lambda l=letter: state.set_interpolation_from_canvas(l))
            slot.openRequested.connect(lambda l=letter: self._open_interpolation_file(l))
            slot.fileDropped.connect(lambda path, l=letter: state.set_interpolation_image(l, path))
        self._mode_changed(state.generation.mode)

    def _restore_window(self) -> None:
        prefs = self.state.preferences
        geometry, window_state = prefs.get_bytes("window/geometry"), prefs.get_bytes("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if window_state is not None:
            self.restoreState(window_state)
        self.actions.themes.get(prefs.theme, self.actions.themes["dark"]).setChecked(True)

    # ---------------------------------------------------------------- what the state reports

    def _status(self, text: str, timeout_ms: int) -> None:
        if text:
            self.statusBar().showMessage(text, timeout_ms)
        else:
            self.statusBar().clearMessage()

    def _model_loaded(self, info: dict) -> None:
        kind = "inpainting model" if info.get("inpainting") else info.get("family_label", info.get("family", ""))
        native = int(info.get("native_size") or 512)
        compiled = " · compiled" if info.get("compiled") else ""
        text = f"{info['name']} · {kind} · {info.get('device')} {info.get('dtype')}{compiled} · {native} px"
        self.model_status.setText(text)
        self.model_status.setToolTip("\n".join(filter(None, [text, info.get("path", "")])))  # all of it, shortened or not
        self.addons.set_model(info)
        self.controls.parameters.set_model({**info, "sizes": [tuple(size) for size in info.get("sizes") or [(native, native)]]})
        self.prompt_panel.demo_hint.setVisible(self.state.session.current_key == DEMO_KEY)

    def _mode_changed(self, mode: Mode) -> None:
        for action in self.actions.mask_actions:
            action.setEnabled(mode == Mode.INPAINT)
        self.actions.generate.setToolTip("Prepare the interpolation" if mode == Mode.INTERPOLATE else "Generate")

    def _exported(self, paths: list) -> None:
        folder = str(Path(paths[0]).parent)
        self.message_bar.show_message(
            f"Exported {len(paths)} file{'s' if len(paths) != 1 else ''} to {folder}", "info",
            actions=[("Open Folder", lambda: self.show_folder(folder), "openExportFolderButton")], timeout_ms=15000)

    def show_folder(self, folder: str | Path) -> bool:
        """The folder in the file manager; where none opens (a bare Linux, a remote session), its path in
        the message bar instead, selectable."""
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            return True
        self.message_bar.show_message(f"No file manager opened; the folder is {folder}", "info")
        return False

    # ---------------------------------------------------------------- what a person does

    def mode(self) -> Mode:
        return self.state.generation.mode

    def step_mode(self, step: int) -> None:
        """Ctrl+Tab / Ctrl+PgDown and back: the next or previous mode tab, round."""
        modes = list(Mode)
        self.state.generation.mode = modes[(modes.index(self.state.generation.mode) + step) % len(modes)]

    def set_mode(self, mode: str | Mode) -> None:
        self.state.generation.mode = Mode(mode)

    def generate(self) -> None:
        self.state.generate(self.canvas_area.mask())

    def open_image(self, path: str, offer_restore: bool = True) -> bool:
        return self.state.open_image(path, offer_restore)

    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", str(self.state.preferences.output_root),
                                              IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", str(Path.home()), MODEL_FILTER)
        if path:
            self.state.open_model_file(path)

    def _open_interpolation_file(self, letter: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Open image {letter}", str(self.state.preferences.output_root),
                                              IMAGE_FILTER)
        if path:
            self.state.set_interpolation_image(letter, path)

    def paste_image(self) -> None:
        clipboard = QGuiApplication.clipboard()
        mime = clipboard.mimeData()
        if mime is not None and mime.hasImage() and not clipboard.image().isNull():
            self.state.set_canvas_image(clipboard.image())
        elif mime is not None and mime.hasUrls() and any(u.isLocalFile() for u in mime.urls()):
            self.state.open_files([u.toLocalFile() for u in mime.urls() if u.isLocalFile()])
        else:
            self.statusBar().showMessage("The clipboard holds no image.", 4000)

    def copy_canvas_image(self) -> None:
        if self.state.document.has_image():
            QGuiApplication.clipboard().setImage(self.state.document.image)
            self.statusBar().showMessage("Image copied", 3000)

    def show_history_batch(self, paths: list[str]) -> None:
        """A history batch as the canvas's grid (a click puts one on the canvas, Esc keeps the canvas)."""
        results = [(path, image) for path in paths for image in [read_image_file(path)[0]] if not image.isNull()]
        if results:
            self.canvas_area.show_batch(results)

    def copy_file_image(self, path: str) -> None:
        image, _ = read_image_file(path)
        if not image.isNull():
            QGuiApplication.clipboard().setImage(image)
            self.statusBar().showMessage("Image copied", 3000)

    def save_image_dialog(self) -> None:
        if not self.state.document.has_image():
            self.statusBar().showMessage("There is no image to save.", 4000)
            return
        source = self.state.document.source
        suggested = str(self.state.preferences.output_root / (Path(source).name if source else "image.png"))
        path, _ = QFileDialog.getSaveFileName(self, "Save image", suggested, "PNG (*.png);;JPEG (*.jpg);;WebP (*.webp)")
        if path:
            self.state.save_canvas_image(path)

    def save_file_as(self, path: str) -> None:
        target, _ = QFileDialog.getSaveFileName(self, "Save image as", str(Path.home() / Path(path).name), "PNG (*.png)")
        if target:
            try:
                shutil.copyfile(path, target)  # a byte copy keeps the parameters
                self.statusBar().showMessage(f"Saved {target}", 6000)
            except OSError as exc:
                self.message_bar.show_message(f"Could not save {Path(target).name}: {exc}", "error")

    def confirm(self, title: str, text: str) -> bool:
        """Asks a yes/no question (tests replace this)."""
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def choose(self, title: str, text: str, choices: list[str]) -> str | None:
        """Asks with buttons `choices` (the first is the default) and Cancel; the chosen text, or None (tests
        replace this)."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, self)
        buttons = {box.addButton(choice, QMessageBox.ButtonRole.AcceptRole): choice for choice in choices}
        box.setDefaultButton(next(iter(buttons)))
        box.exec()
        return buttons.get(box.clickedButton())

    def delete_result(self, path: str) -> None:
        answer = self.choose("Delete image", f"Move {Path(path).name} to the Trash, or only remove it from the "
                             "history (the file stays)?", ["Move to Trash", "Remove from history only"])
        if answer is not None:
            self.state.delete_result(path, trash=answer == "Move to Trash")

    def restore_parameters_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Restore parameters from an image",
                                              str(self.state.preferences.output_root), "PNG (*.png);;All files (*)")
        if path:
            self.state.restore_parameters_from(path)

    def show_preferences(self) -> None:
        prefs = self.state.preferences
        loaded_with = (prefs.device, prefs.precision, prefs.compile_unet)
        unavailable = (self.state.session.model_info or {}).get("unavailable_devices") or {}
        if PreferencesDialog(prefs, self, unavailable_devices=unavailable).exec():
            self.apply_preferences()
            if (prefs.device, prefs.precision, prefs.compile_unet) != loaded_with and self.state.session.model_info:
                if self.state.session.busy:
                    self.message_bar.show_message("The new device, precision and compile settings apply when a model "
                                                  "is next loaded.", "info", timeout_ms=6000)
                else:
                    self.state.load_model(self.state.session.current_key)  # they apply at once

    def apply_preferences(self) -> None:
        """After the Preferences dialog wrote the settings: rescan models, reload history, theme."""
        self.state.refresh_models()
        self.state.history.load_folder(self.state.preferences.output_root)
        self.set_theme(self.state.preferences.theme)
        self.canvas_area.apply_mask_colour()
        self.parameters.hires_upscaler_combo.set_names(self.state.upscalers())  # (the models folders may be new)

    def set_theme(self, name: str) -> None:
        from .theme import apply_theme

        self.state.preferences.theme = name
        self.actions.themes[name].setChecked(True)
        app = QApplication.instance()
        if app is not None:
            apply_theme(app, name)

    def open_output_folder(self) -> None:
        folder = self.state.preferences.output_root
        folder.mkdir(parents=True, exist_ok=True)
        self.show_folder(folder)

    def escape(self) -> None:
        """Esc: leaves a batch's grid (keeping the canvas), else cancels the running job."""
        area = self.canvas_area
        if area.stack.currentWidget() is area.batch_grid:
            area.batch_grid.chosen.emit("", None)
            return
        self.state.cancel()

    def use_example_prompt(self, prompt: str) -> None:
        self.state.generation.prompt = prompt
        self.prompt_edit.setFocus()

    def shortcuts_text(self) -> str:
        """Every menu action that has a shortcut, and the canvas's keys, as HTML rows."""
        rows = []
        for action in self.actions.all():
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
            if keys:
                rows.append((action.text().replace("&", "").rstrip("…"), keys))
        rows += [("Generate (from a prompt box)", "Ctrl+Enter"), ("Brush size smaller / larger", "[ / ]"),
                 ("Pan the canvas", "Space+drag, middle drag"), ("Zoom the canvas", "Wheel"),
                 ("A history image's menu", "Menu, Shift+F10")]
        return "<table>" + "".join(f"<tr><td>{name}&nbsp;&nbsp;</td><td><b>{keys}</b></td></tr>"
                                   for name, keys in rows) + "</table>"

    def show_upscale(self) -> None:
        """Image → Upscale…: the dialog (not modal: the window stays usable), then the job on the worker."""
        from .upscale_dialog import UpscaleDialog

        if not self.state.document.has_image():
            self.statusBar().showMessage("There is no image on the canvas to upscale.", 5000)
            return
        image = self.state.document.image
        self.upscale_dialog = UpscaleDialog(self.state.upscalers(), (image.width(), image.height()), parent=self)
        self.upscale_dialog.accepted.connect(lambda: self.state.upscale_canvas(*self.upscale_dialog.choice()))
        self.upscale_dialog.open()

    def show_expand(self) -> None:
        """Image → Expand…: the dialog, then the grown picture on the canvas with its border masked (Inpaint)."""
        from .expand_dialog import ExpandDialog

        if not self.state.document.has_image():
            self.statusBar().showMessage("There is no image on the canvas to expand.", 5000)
            return
        image = self.state.document.image
        self.expand_dialog = ExpandDialog((image.width(), image.height()), parent=self)
        self.expand_dialog.accepted.connect(self._expand_accepted)
        self.expand_dialog.open()

    def _expand_accepted(self) -> None:
        dialog = self.expand_dialog
        mask = self.state.expand_canvas(*dialog.amounts(), masked_content=dialog.masked_content())
        if mask is not None:
            self.canvas.setMaskImage(mask)
            self.canvas.setOverlayShown(True)  # (it may be resting after an earlier result)
            self.canvas.fitInView_()

    def show_docs(self) -> None:
        from .docs_dialog import DocsDialog

        if getattr(self, "docs_dialog", None) is None:
            self.docs_dialog = DocsDialog(self)
        self.docs_dialog.show()
        self.docs_dialog.raise_()

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", self.shortcuts_text())

    def show_about(self) -> None:
        from sd_desktop import __version__

        families = supported_labels()
        QMessageBox.about(self, "About sd-desktop", f"<b>sd-desktop {__version__}</b><p>Local image generation and "
                          f"editing with latent diffusion ({families}), written from scratch in PyTorch.</p>")

    def sizeHint(self) -> QSize:
        return QSize(1400, 880)

    def closeEvent(self, event) -> None:
        session = self.state.session
        if not self._closed and session.busy and session.job_kind in ("generate", "prepare", "export", "upscale"):
            what = {"generate": "A generation", "prepare": "Preparing the interpolation",
                    "export": "An export", "upscale": "An upscale"}[session.job_kind]
            if not self.confirm("Quit sd-desktop", f"{what} is running — stop it and quit? (Finished images "
                                "are already saved.)"):
                event.ignore()
                return
        if not self._closed:
            self._closed = True
            self.state.preferences.q.setValue("window/geometry", self.saveGeometry())
            self.state.preferences.q.setValue("window/state", self.saveState())
            if session.busy:  # gone from the screen at once; the worker ends its step behind it
                self.hide()
                QApplication.processEvents()
            self.state.shutdown()
        super().closeEvent(event)
