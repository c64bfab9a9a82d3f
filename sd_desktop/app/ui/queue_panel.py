"""The queue under the Generate button: the waiting jobs (prompt, mode, steps, sampler, seed), Move up, Remove
and Cancel all; hidden while nothing waits."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from ..state.queue import JobQueue
from .widgets import named, tool_button

JOB_ROLE = Qt.ItemDataRole.UserRole


class QueuePanel(QWidget):
    def __init__(self, queue: JobQueue, cancel_all, parent: QWidget | None = None):
        super().__init__(parent)
        self.queue = queue
        self.title = QLabel()
        self.title.setObjectName("hintLabel")
        self.list = named(QListWidget(), "queueList", "Queued jobs",
                          "Jobs waiting for the running one, in order; each keeps the settings it was queued with")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setUniformItemSizes(True)
        self.list.setSelectionMode(QListWidget.SelectionMode.SingleSelection)
        self.up_button = tool_button("Move up", "queueUpButton", "Move up: run the selected job sooner")
        self.remove_button = tool_button("Remove", "queueRemoveButton", "Remove: drop the selected job")
        self.cancel_all_button = tool_button("Cancel all", "cancelAllButton",
                                             "Cancel all: drop every waiting job, stop Generate forever, and "
                                             "cancel the running job")
        self.up_button.clicked.connect(lambda: self._act(queue.move_up))
        self.remove_button.clicked.connect(lambda: self._act(queue.remove))
        self.cancel_all_button.clicked.connect(cancel_all)
        row = QHBoxLayout()
        row.setSpacing(4)
        row.addWidget(self.title, 1)
        row.addWidget(self.up_button)
        row.addWidget(self.remove_button)
        row.addWidget(self.cancel_all_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(row)
        layout.addWidget(self.list)
        queue.changed.connect(self.refresh)
        self.refresh()

    def _act(self, action) -> None:
        item = self.list.currentItem()
        if item is not None:
            chosen = item.data(JOB_ROLE)
            action(chosen)
            for row in range(self.list.count()):  # the moved job stays selected
                if self.list.item(row).data(JOB_ROLE) == chosen:
                    self.list.setCurrentRow(row)

    def refresh(self) -> None:
        self.list.clear()
        for job in self.queue.jobs:
            item = QListWidgetItem(job.label())
            item.setData(JOB_ROLE, job.id)
            item.setToolTip(job.request.prompt)
            self.list.addItem(item)
        waiting = len(self.queue.jobs)
        forever = " · Generate forever is on" if self.queue.forever is not None else ""
        self.title.setText(f"{waiting} queued{forever}")
        self.list.setVisible(waiting > 0)
        if waiting:  # as tall as its rows, up to four
            rows = min(waiting, 4) * max(self.list.sizeHintForRow(0), 1)
            self.list.setFixedHeight(rows + 2 * self.list.frameWidth() + 2)
        self.setVisible(waiting > 0 or self.queue.forever is not None)
