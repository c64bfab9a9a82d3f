"""Observable properties (in the manner of krita-ai-diffusion's properties.py): state objects declare
`steps = Property(20, persist=True)` and get a `steps_changed` signal with it. Widgets bind to them
(ui.binding); persistence reads and writes the persistent ones as a plain dict."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, Signal


class Property:
    """A value of an ObservableObject. `convert` turns what is assigned into the stored value (raising
    TypeError or ValueError for what it cannot take); a change emits `<name>_changed(value)`."""

    def __init__(self, default: Any, *, persist: bool = False, convert: Callable[[Any], Any] | None = None):
        self.default = default
        self.persist = persist
        self.convert = convert
        self.name = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj._values.get(self.name, self.default)

    def __set__(self, obj, value) -> None:
        if self.convert is not None:
            value = self.convert(value)
        current = obj._values.get(self.name, self.default)
        obj._values[self.name] = value
        if current != value:
            getattr(obj, f"{self.name}_changed").emit(value)


class _ObservableType(type(QObject)):
    """Adds a `<name>_changed = Signal(object)` for every Property of the class being made."""

    def __new__(mcls, name, bases, namespace, **kwargs):
        for key, value in list(namespace.items()):
            if isinstance(value, Property):
                namespace.setdefault(f"{key}_changed", Signal(object))
        return super().__new__(mcls, name, bases, namespace, **kwargs)


class ObservableObject(QObject, metaclass=_ObservableType):
    """A QObject whose Property attributes announce their changes."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._values: dict[str, Any] = {}

    @classmethod
    def properties(cls) -> dict[str, Property]:
        found: dict[str, Property] = {}
        for klass in reversed(cls.__mro__):
            found.update({k: v for k, v in vars(klass).items() if isinstance(v, Property)})
        return found

    def persistent(self) -> dict[str, Any]:
        """The persistent properties as a plain (JSON-ready) dict."""
        return {name: getattr(self, name) for name, prop in self.properties().items() if prop.persist}

    def load(self, values: dict) -> list[str]:
        """Set the persistent properties found in `values`; a value that does not convert is left as it was.
        Returns the names that were set."""
        done = []
        for name, prop in self.properties().items():
            if prop.persist and name in values:
                try:
                    setattr(self, name, values[name])
                except (TypeError, ValueError, OverflowError):
                    continue
                done.append(name)
        return done
