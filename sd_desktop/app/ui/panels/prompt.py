"""The prompt and negative prompt (multi-line; Ctrl+Enter generates through the window's action), bound to
GenerationSettings."""

from __future__ import annotations

import re

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QCompleter, QHBoxLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from ...state.generation import DEMO_HINT, DEMO_HINT_DETAIL, EXAMPLE_PROMPT, GenerationSettings
from ..binding import bind
from ..widgets import named, section


LORA_TYPED = re.compile(r"<lora:([^:<>]*)$")  # a LoRA name being typed right before the cursor


def counter_label(accessible: str, tip: str) -> QLabel:
    return named(QLabel(""), "hintLabel", accessible, tip)  # styled as a hint


def titled_row(title: str, right: QLabel) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(section(title))
    row.addStretch(1)
    row.addWidget(right)
    return row


class PromptEdit(QPlainTextEdit):
    """A plain-text box sized in lines; Tab moves focus instead of typing a tab. Pasting a whole A1111
    infotext (prompt, negative prompt and the parameters line) pastes it and says so (infotextPasted);
    pasting an image (no text with it) hands it on (imagePasted), for the canvas."""

    infotextPasted = Signal(str)
    imagePasted = Signal()

    def __init__(self, lines: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        height = QFontMetrics(self.font()).lineSpacing() * lines + 14
        self.setMinimumHeight(height)
        self.setMaximumHeight(height * 2)
        self._completer: QCompleter | None = None

    def text(self) -> str:
        return self.toPlainText()

    def insert_snippet(self, text: str) -> None:
        """Write `text` at the cursor if the box has the focus, else at the end, with a space before it when
        it would touch a word."""
        cursor = self.textCursor()
        if not self.hasFocus():
            cursor.movePosition(cursor.MoveOperation.End)
        before = self.toPlainText()[:cursor.position()]
        cursor.insertText(("" if not before or before[-1] in " \n,(" else " ") + text)
        self.setTextCursor(cursor)

    def set_completions(self, names: list[str]) -> None:
        """The LoRA names offered after `<lora:` (a popup, as A1111's extension offers them)."""
        if self._completer is None:
            self._completer = QCompleter(self)
            self._completer.setObjectName("loraCompleter")
            self._completer.setWidget(self)
            self._completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            self._completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
            self._completer.activated.connect(self._complete)
            self.textChanged.connect(self._offer_completion)
        self._completer.setModel(QStringListModel(sorted(names, key=str.lower), self._completer))

    def _typed_lora_name(self) -> str | None:
        before = self.toPlainText()[:self.textCursor().position()]
        match = LORA_TYPED.search(before)
        return None if match is None else match.group(1)

    def _offer_completion(self) -> None:
        typed = self._typed_lora_name()
        if typed is None or not self.hasFocus():
            self._completer.popup().hide()
            return
        self._completer.setCompletionPrefix(typed)
        rect = self.cursorRect()
        rect.setWidth(240)
        self._completer.complete(rect)

    def _complete(self, name: str) -> None:
        typed = self._typed_lora_name() or ""
        cursor = self.textCursor()
        for _ in typed:
            cursor.deletePreviousChar()
        cursor.insertText(f"{name}:1>")
        self.setTextCursor(cursor)

    def canInsertFromMimeData(self, source) -> bool:  # noqa: N802 - Qt's name
        return source.hasImage() or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source) -> None:  # noqa: N802 - Qt's name
        if source.hasImage() and not source.hasText():
            self.imagePasted.emit()  # Ctrl+V with a picture on the clipboard: it goes on the canvas
            return
        super().insertFromMimeData(source)
        if source.hasText():
            from sd_desktop.core.io.infotext import is_infotext

            text = source.text()
            if is_infotext(text):
                self.infotextPasted.emit(text)


class PromptPanel(QWidget):
    infotextPasted = Signal(str)  # a whole A1111 infotext was pasted into either box
    imagePasted = Signal()  # an image was pasted into either box

    def __init__(self, settings: GenerationSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.prompt_edit = PromptEdit(4)
        self.prompt_edit.setObjectName("promptEdit")
        self.prompt_edit.setAccessibleName("Prompt")
        self.prompt_edit.setPlaceholderText("Describe the picture, e.g. " + EXAMPLE_PROMPT)
        self.prompt_edit.setToolTip("What the picture should show. Ctrl+Enter generates.")

        self.negative_edit = PromptEdit(2)
        self.negative_edit.setObjectName("negativePromptEdit")
        self.negative_edit.setAccessibleName("Negative prompt")
        self.negative_edit.setPlaceholderText("What to avoid (optional)")
        self.negative_edit.setToolTip("What the picture should not show (optional). Ctrl+Enter generates.")

        self.prompt_count = counter_label("Tokens in the prompt",
                                          "Tokens used / what its 75-token chunks hold, counted as the text encoder "
                                          "reads the prompt (weights, BREAK)")
        self.negative_count = counter_label("Tokens in the negative prompt",
                                            "Tokens used / what its 75-token chunks hold")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(titled_row("Prompt", self.prompt_count))
        layout.addWidget(self.prompt_edit)
        self.demo_hint = QLabel(DEMO_HINT)
        self.demo_hint.setObjectName("hintLabel")
        self.demo_hint.setWordWrap(True)
        self.demo_hint.setToolTip(DEMO_HINT_DETAIL)
        self.demo_hint.setVisible(False)
        layout.addWidget(self.demo_hint)
        layout.addLayout(titled_row("Negative prompt", self.negative_count))
        layout.addWidget(self.negative_edit)
        bind(settings, "prompt", self.prompt_edit)
        bind(settings, "negative_prompt", self.negative_edit)
        self.prompt_edit.infotextPasted.connect(self.infotextPasted)
        self.negative_edit.infotextPasted.connect(self.infotextPasted)
        self.prompt_edit.imagePasted.connect(self.imagePasted)
        self.negative_edit.imagePasted.connect(self.imagePasted)

    def show_counts(self, prompt: str, negative: str) -> None:
        self.prompt_count.setText(prompt)
        self.negative_count.setText(negative)

    def prompt(self) -> str:
        return self.prompt_edit.toPlainText().strip()

    def negative_prompt(self) -> str:
        return self.negative_edit.toPlainText().strip()
