"""The token counter beside the prompt boxes ("80/150": two chunks of 75), counted as the encoder will count
them (core.text.prompts), a moment after typing stops: LoRA tags take no tokens, an embedding's word takes
its vectors (their counts come from the LoRAs & embeddings scan). Pure Python: no torch in the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from .addons import AddonCatalogue
from .generation import GenerationSettings

DELAY_MS = 150


class TokenCounter(QObject):
    counted = Signal(str, str)  # prompt, negative prompt: "12/75"

    def __init__(self, settings: GenerationSettings, parent: QObject | None = None,
                 addons: AddonCatalogue | None = None):
        super().__init__(parent)
        self.settings = settings
        self.addons = addons
        self._triggers = None  # core.text.embeddings.EmbeddingSet of the catalogue's embeddings, made when needed
        if addons is not None:
            addons.changed.connect(self._addons_changed)
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

        from sd_desktop.core.lora.tags import strip_tags

        tokenizer = CLIPTokenizer.default()
        used, room = count_tokens(tokenizer, strip_tags(text), self.settings.emphasis, self._embeddings(tokenizer))
        return f"{used}/{room}"

    def _embeddings(self, tokenizer):
        from sd_desktop.core.text.embeddings import trigger_set

        if self._triggers is None and self.addons is not None:
            counts = [(entry.name, entry.vectors) for entry in self.addons.entries
                      if entry.kind == "embedding" and entry.vectors]
            self._triggers = trigger_set(tokenizer, len(tokenizer.vocab), counts) if counts else None
        return self._triggers

    def _addons_changed(self) -> None:
        self._triggers = None
        self.timer.start()

    def count_now(self) -> None:
        self.timer.stop()
        self.counted.emit(self.count(self.settings.prompt), self.count(self.settings.negative_prompt))
