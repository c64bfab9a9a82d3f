"""The window's actions (with their shortcuts, which work even where the menu bar is hidden) and menus."""

from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow

from ..state.generation import EXAMPLE_PROMPTS
from ..state.preferences import THEMES


def make_action(window: QMainWindow, text: str, slot, shortcut=None, tip: str = "", name: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    if name:
        action.setObjectName(name)
    action.triggered.connect(slot)
    window.addAction(action)
    return action


class WindowActions:
    """Every QAction of the window, as attributes; `build_menus` puts them into the menu bar."""

    def all(self) -> list[QAction]:
        return [value for value in vars(self).values() if isinstance(value, QAction)]

    def __init__(self, window):
        a = lambda *args: make_action(window, *args)  # noqa: E731
        canvas, area = window.canvas, window.canvas_area
        keys = QKeySequence.StandardKey
        self.open = a("&Open Image…", window.open_image_dialog, keys.Open, "Open an image onto the canvas",
                      "openImageAction")
        self.save = a("&Save Image As…", window.save_image_dialog, keys.Save, "Save the canvas image with its parameters",
                      "saveImageAction")
        self.open_model = a("Open &Model…", window.open_model_dialog, None,
                            "Load a .safetensors / .ckpt file or a diffusers folder", "openModelAction")
        self.preferences = a("&Preferences…", window.show_preferences, keys.Preferences,
                             "Output folder, models folders, theme", "preferencesAction")
        self.open_output = a("Show &Output Folder", window.open_output_folder, None,
                             "Open the folder where images are saved", "openOutputFolderAction")
        self.quit = a("&Quit", window.close, keys.Quit, "", "quitAction")
        self.undo = canvas.undoStack().createUndoAction(window, "&Undo")
        self.undo.setShortcuts([QKeySequence(keys.Undo)])
        self.undo.setObjectName("undoAction")
        self.redo = canvas.undoStack().createRedoAction(window, "&Redo")
        self.redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.redo.setObjectName("redoAction")
        window.addAction(self.undo)
        window.addAction(self.redo)
        self.paste = a("&Paste Image", window.paste_image, keys.Paste, "Paste an image from the clipboard onto the canvas",
                       "pasteImageAction")
        self.copy = a("&Copy Image", window.copy_canvas_image, keys.Copy, "Copy the canvas image", "copyImageAction")
        self.restore = a("Restore Parameters from &Image…", window.restore_parameters_dialog, None,
                         "Read the parameters stored in a PNG into the controls", "restoreParametersAction")
        self.clear_mask = a("C&lear Mask", canvas.clearMask, None, "", "clearMaskAction")
        self.invert_mask = a("&Invert Mask", canvas.invertMask, None, "", "invertMaskAction")
        self.next_mode = a("&Next Mode", lambda: window.step_mode(1), "Ctrl+PgDown", "The next mode tab",
                           "nextModeAction")
        self.next_mode.setShortcuts([QKeySequence("Ctrl+PgDown"), QKeySequence("Ctrl+Tab")])
        self.previous_mode = a("P&revious Mode", lambda: window.step_mode(-1), "Ctrl+PgUp", "The previous mode tab",
                               "previousModeAction")
        self.previous_mode.setShortcuts([QKeySequence("Ctrl+PgUp"), QKeySequence("Ctrl+Shift+Tab")])
        self.fit = a("&Fit to Window", canvas.fitInView_, "Ctrl+0", "", "fitAction")
        self.actual_size = a("&Actual Size (100%)", lambda: canvas.setZoom(1.0), "Ctrl+1", "", "actualSizeAction")
        self.generate = a("&Generate", window.generate, ["Ctrl+Return", "Ctrl+Enter"], "Generate (in Interpolate: Prepare)",
                          "generateAction")
        self.cancel = a("&Cancel", window.escape, "Esc", "Stop the running job", "cancelAction")
        self.mask_overlay = a("Mask &Overlay", lambda on: canvas.setOverlayShown(on), "H",
                              "Show or hide the painted mask over the picture (it is used either way)",
                              "maskOverlayAction")
        self.mask_overlay.setCheckable(True)
        self.mask_overlay.setChecked(True)
        canvas.overlayShownChanged.connect(self.mask_overlay.setChecked)
        self.compare = a("Compare &Before/After", lambda on: canvas.setComparing(on), "C",
                         "The picture a result was made from, left of a divider you drag, the result right of it",
                         "compareAction")
        self.compare.setCheckable(True)
        self.compare.setEnabled(False)
        canvas.compareChanged.connect(self.compare.setChecked)
        canvas.compareAvailableChanged.connect(self.compare.setEnabled)
        self.back_to_original = a("Back to the &Original", window.state.back_to_original, "Ctrl+Shift+Backspace",
                                  "Put the picture this result was made from back on the canvas (the mask kept), "
                                  "to try another strength or prompt", "backToOriginalAction")
        self.back_to_original.setEnabled(False)
        canvas.compareAvailableChanged.connect(self.back_to_original.setEnabled)
        self.expand = a("E&xpand…", window.show_expand, "Ctrl+Shift+E",
                        "Grow the canvas on any side and paint the new border (outpainting)", "expandAction")
        self.upscale = a("&Upscale…", window.show_upscale, "Ctrl+Shift+U",
                         "Make the canvas image larger with an upscaler (Real-ESRGAN)", "upscaleAction")
        self.brush = a("&Brush", lambda: area.set_tool("brush"), "B", "", "brushAction")
        self.eraser = a("&Eraser", lambda: area.set_tool("eraser"), "E", "", "eraserAction")
        self.smaller_brush = a("S&maller Brush", lambda: canvas.stepBrushSize(-1), "[", "", "smallerBrushAction")
        self.larger_brush = a("L&arger Brush", lambda: canvas.stepBrushSize(+1), "]", "", "largerBrushAction")
        self.mask_actions = (self.brush, self.eraser, self.smaller_brush, self.larger_brush, self.clear_mask,
                             self.invert_mask)
        self.about = a("&About sd-desktop", window.show_about)
        self.docs = a("&Documentation", window.show_docs, "F1", "The README: every feature, option and file format",
                      "docsAction")
        self.shortcuts = a("&Keyboard Shortcuts", window.show_shortcuts, None, "Every key the window knows",
                           "shortcutsAction")
        self.theme_group = QActionGroup(window)
        self.themes = {}
        for key, label in THEMES.items():
            action = QAction(label, window, checkable=True)
            action.setObjectName(f"theme_{key}")
            action.triggered.connect(lambda _=False, k=key: window.set_theme(k))
            self.theme_group.addAction(action)
            self.themes[key] = action

    def build_menus(self, window) -> None:
        def fill(menu, actions):
            for action in actions:
                menu.addSeparator() if action is None else menu.addAction(action)

        bar = window.menuBar()
        fill(bar.addMenu("&File"), (self.open, self.save, None, self.open_model, self.open_output, None,
                                    self.preferences, None, self.quit))
        fill(bar.addMenu("&Edit"), (self.undo, self.redo, None, self.copy, self.paste, None, self.clear_mask,
                                    self.invert_mask, None, self.restore))
        fill(bar.addMenu("&Image"), (self.generate, self.cancel, None, self.compare, self.back_to_original, None,
                                     self.upscale, self.expand, None, self.brush, self.eraser, self.smaller_brush,
                                     self.larger_brush))
        view = bar.addMenu("&View")
        fill(view, (self.next_mode, self.previous_mode, None, self.fit, self.actual_size, self.mask_overlay, None))
        fill(view.addMenu("&Theme"), self.themes.values())
        view.addSeparator()
        view.addAction(window.history_dock.toggleViewAction())  # (the controls are always shown: no item for them)
        view.addAction(window.addons_dock.toggleViewAction())
        help_menu = bar.addMenu("&Help")
        examples = help_menu.addMenu("&Example Prompts")
        examples.setObjectName("examplePromptsMenu")
        for prompt in EXAMPLE_PROMPTS:
            action = examples.addAction(prompt)
            action.triggered.connect(lambda _=False, p=prompt: window.use_example_prompt(p))
        fill(help_menu, (self.docs, self.shortcuts, None, self.about))
