"""Help → Documentation (F1): the README, the project's one document, shown in the window. It comes from the
checkout beside the package when there is one (with its screenshots), else from the installed package's
metadata, where pip keeps the README as the long description."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLineEdit, QTextBrowser, QVBoxLayout, QWidget

import sd_desktop


def readme() -> tuple[str, Path | None]:
    """(the README's markdown, the folder its relative links start from); ("", None) when neither the checkout
    nor the installed metadata has it."""
    beside = Path(sd_desktop.__file__).resolve().parent.parent / "README.md"
    if beside.is_file():
        try:
            text = beside.read_text(encoding="utf-8")
            if text.startswith("# sd-desktop"):  # (in site-packages another package's README may sit there)
                return text, beside.parent
        except (OSError, UnicodeDecodeError):
            pass
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        text = metadata("sd-desktop").get_payload() or ""
    except (PackageNotFoundError, OSError):
        text = ""
    return str(text), None


class DocsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("sd-desktop documentation")
        self.setObjectName("docsDialog")
        self.find = QLineEdit()
        self.find.setObjectName("docsFind")
        self.find.setPlaceholderText("Find in the documentation (Enter: next)")
        self.find.setClearButtonEnabled(True)
        self.find.returnPressed.connect(self.find_next)
        self.browser = QTextBrowser()
        self.browser.setObjectName("docsBrowser")
        self.browser.setOpenExternalLinks(True)
        text, folder = readme()
        if folder is not None:
            self.browser.setSearchPaths([str(folder)])
            self.browser.document().setBaseUrl(QUrl.fromLocalFile(str(folder) + "/"))
        self.browser.setMarkdown(text or "The documentation did not come with this copy of sd-desktop: it is the "
                                         "README.md of the project's source.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.find)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)
        self.resize(900, 720)

    def find_next(self) -> bool:
        """The next place the find field's text appears, wrapping round at the end."""
        text = self.find.text()
        if not text:
            return False
        if self.browser.find(text):
            return True
        cursor = self.browser.textCursor()
        cursor.movePosition(cursor.MoveOperation.Start)
        self.browser.setTextCursor(cursor)
        return self.browser.find(text)
