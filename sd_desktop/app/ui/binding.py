"""Two-way binding of a state property to a widget (krita-ai-diffusion's `bind`): the widget shows the
property, and what the user does to the widget sets the property. Each side changes the other only when
the values differ, so the two never loop."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtWidgets import (QAbstractButton, QAbstractSlider, QComboBox, QDoubleSpinBox, QLineEdit, QPlainTextEdit,
                               QSpinBox, QWidget)


def _accessors(widget: QWidget) -> tuple[Callable[[], Any], Callable[[Any], None], Any]:
    """(read, write, changed signal) of the widget's value."""
    if hasattr(widget, "bound_value"):  # a widget that maps its own value (the seed box: -1 = None)
        return widget.bound_value, widget.set_bound_value, widget.boundValueChanged
    if isinstance(widget, QComboBox):
        def write(value):
            index = widget.findData(value)
            if index >= 0:
                widget.setCurrentIndex(index)

        return widget.currentData, write, widget.currentIndexChanged
    if isinstance(widget, QDoubleSpinBox):
        return widget.value, lambda v: widget.setValue(float(v)), widget.valueChanged
    if isinstance(widget, (QSpinBox, QAbstractSlider)):
        return widget.value, lambda v: widget.setValue(int(v)), widget.valueChanged
    if isinstance(widget, QAbstractButton):
        return widget.isChecked, lambda v: widget.setChecked(bool(v)), widget.toggled
    if isinstance(widget, QPlainTextEdit):
        return widget.toPlainText, widget.setPlainText, widget.textChanged
    if isinstance(widget, QLineEdit):
        return widget.text, widget.setText, widget.textChanged
    raise TypeError(f"cannot bind a {type(widget).__name__}")


def bind(model, name: str, widget: QWidget) -> None:
    """Keep `widget` and `model.<name>` equal, starting from the model's value."""
    read, write, changed = _accessors(widget)

    def to_widget(value) -> None:
        if read() != value:
            write(value)

    def to_model(*_args) -> None:
        value = read()
        if getattr(model, name) != value:
            try:
                setattr(model, name, value)
            except (TypeError, ValueError, OverflowError):
                to_widget(getattr(model, name))  # a value the property refuses: show what it holds

    to_widget(getattr(model, name))
    getattr(model, f"{name}_changed").connect(to_widget)
    changed.connect(to_model)
