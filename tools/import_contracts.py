"""An import-linter contract the built-in ones cannot express: import-linter sees an external package only
as a whole (PySide6), so "the state layer may use QtCore but not QtWidgets" is checked here, on the import
lines themselves. pyproject.toml registers it (lint-imports runs from the repository root)."""

from __future__ import annotations

from importlinter import Contract, ContractCheck, fields, output


class ForbiddenSubmoduleContract(Contract):
    """No module in `source_modules` imports any of `forbidden_submodules` (e.g. PySide6.QtWidgets)."""

    source_modules = fields.ListField(subfield=fields.ModuleField())
    forbidden_submodules = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        forbidden = [str(name) for name in self.forbidden_submodules]  # type: ignore[attr-defined]
        packages = {name.split(".")[0] for name in forbidden}
        failures = []
        for source in self.source_modules:  # type: ignore[attr-defined]
            modules = graph.find_descendants(source.name) | {source.name}
            for module in sorted(modules):
                for package in packages & graph.find_modules_directly_imported_by(module):
                    for detail in graph.get_import_details(importer=module, imported=package):
                        line = detail["line_contents"]
                        if any(f"{name} " in f"{line} " or f"{name}." in line for name in forbidden):
                            failures.append(f"{module}:{detail['line_number']}: {line}")
        return ContractCheck(kept=not failures, metadata={"failures": failures})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for failure in check.metadata["failures"]:
            output.print_error(failure)
