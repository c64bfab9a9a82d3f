"""The token counter beside the prompt boxes ("80/150": two chunks of 75), counted as the encoder will count
them (core.text.prompts), a moment after typing stops. Pure Python: no torch in the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from .generation import GenerationSettings

DELAY_MS = 150


class TokenCounter(QObject):
    counted = Signal(str, str)  # prompt, negative prompt: "12/75"

    def __init__(self, settings: GenerationSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DELAY_MS)
        self.timer.timeout.connect(self.count_now)
        for signal in (settings.prompt_changed, settings.negative_prompt_changed, settings.emphasis_changed):
            signal.connect(lambda _value: self.timer.start())
        self.timer.start()

    def count(self, text: str) -> str:
        from sd_desktop.core.text.prompts import count_tokens
        from sd_desktop.core.text.tokenizer import CLIPTokenizer

        used, room = count_tokens(CLIPTokenizer.default(), text, self.settings.emphasis)
        return f"{used}/{room}"

    def count_now(self) -> None:
        self.timer.stop()
        self.counted.emit(self.count(self.settings.prompt), self.count(self.settings.negative_prompt))
