"""A soak test of the real window with the demo model (not part of the default run): random clicks, typing,
mask strokes, mode switches, queueing, cancels, undo and history clicks for a while; then it checks that
nothing raised, that every finished image is on disk and in the history, and prints what it did.

    QT_QPA_PLATFORM=offscreen python tests/soak_window.py --minutes 10 [--seed 1]

Exit status 0 when all is well; 1 with the exceptions (and Qt warnings that are errors) printed otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    temp = Path(tempfile.mkdtemp(prefix="sd-desktop-soak-"))
    os.environ["SD_DESKTOP_CONFIG_DIR"] = str(temp / "config")
    os.environ["SD_DESKTOP_OUTPUT_DIR"] = str(temp / "outputs")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QEvent, QPointF, Qt, qInstallMessageHandler, QtMsgType
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from sd_desktop.app import MainWindow
    from sd_desktop.core.request import Mode

    errors: list[str] = []
    sys.excepthook = lambda kind, value, tb: errors.append("".join(traceback.format_exception(kind, value, tb)))
    qInstallMessageHandler(lambda kind, _context, message: errors.append(f"Qt: {message}")
                           if kind in (QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg) else None)

    app = QApplication(sys.argv)
    window = MainWindow()
    window.confirm = lambda title, text: True
    window.choose = lambda title, text, choices: choices[-1]  # "Remove from history only": files stay
    window.resize(1280, 820)
    window.show()
    rng = random.Random(args.seed)
    finished: list[str] = []
    window.state.session.resultsReady.connect(lambda results: finished.extend(r["path"] for r in results))
    outcomes: dict[str, int] = {}
    window.state.session.host.jobEnded.connect(lambda _job, outcome: outcomes.__setitem__(outcome, outcomes.get(outcome, 0) + 1))

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)

    def stroke() -> None:
        viewport = window.canvas.viewport()
        points = [QPointF(rng.uniform(0.2, 0.8) * viewport.width(), rng.uniform(0.2, 0.8) * viewport.height())
                  for _ in range(6)]
        for kind, point, button, buttons in ([(QEvent.Type.MouseButtonPress, points[0], Qt.MouseButton.LeftButton,
                                               Qt.MouseButton.LeftButton)]
                                             + [(QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton,
                                                 Qt.MouseButton.LeftButton) for p in points[1:]]
                                             + [(QEvent.Type.MouseButtonRelease, points[-1], Qt.MouseButton.LeftButton,
                                                 Qt.MouseButton.NoButton)]):
            QApplication.sendEvent(viewport, QMouseEvent(kind, point, QPointF(viewport.mapToGlobal(point.toPoint())),
                                                         button, buttons, Qt.KeyboardModifier.NoModifier))

    words = "a red blue green yellow circle square triangle small large on background top left".split()
    actions = {
        "type a prompt": lambda: window.prompt_edit.setPlainText(" ".join(rng.choices(words, k=rng.randint(3, 9)))),
        "generate": lambda: window.generate_button.click(),
        "switch mode": lambda: window.set_mode(rng.choice([Mode.TXT2IMG, Mode.TXT2IMG, Mode.IMG2IMG, Mode.INPAINT])),
        "stroke the mask": stroke,
        "change steps": lambda: window.parameters.steps_spin.setValue(rng.randint(2, 8)),
        "change the sampler": lambda: window.parameters.sampler_combo.setCurrentIndex(
            rng.randrange(window.parameters.sampler_combo.count())),
        "click a history image": lambda: window.history_list.count() and window.history_list.itemClicked.emit(
            window.history_list.item(rng.randrange(window.history_list.count()))),
        "undo": lambda: window.actions.undo.trigger(),
        "cancel": lambda: window.cancel_button.click(),
        "Ctrl+Tab": lambda: QTest.keyClick(window.prompt_edit, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier),
        "search the history": lambda: window.history.search.setText(rng.choice(["", "red", "circle", ""])),
    }
    weights = [8, 10, 6, 4, 3, 2, 4, 2, 1, 2, 2]
    pump(0)
    deadline = time.monotonic() + 120
    while window.state.session.model_info is None and time.monotonic() < deadline:
        pump(0.05)
    window.parameters.steps_spin.setValue(4)
    counts: dict[str, int] = {}
    end = time.monotonic() + args.minutes * 60
    while time.monotonic() < end:
        name = rng.choices(list(actions), weights)[0]
        try:
            actions[name]()
        except Exception:  # noqa: BLE001 - recorded, and the run goes on
            errors.append(f"{name}:\n{traceback.format_exc()}")
        counts[name] = counts.get(name, 0) + 1
        pump(rng.uniform(0.02, 0.4))
    print(f"model: {(window.state.session.model_info or {}).get('name')}; queued {len(window.state.queue)}; "
          f"message: {window.message_bar.text()!r}", file=sys.stderr)
    window.state.cancel_all()
    deadline = time.monotonic() + 120
    while window.state.session.busy and time.monotonic() < deadline:
        pump(0.05)
    pump(0.5)
    on_disk = [path for path in finished if Path(path).is_file()]
    in_history = set(window.state.history.paths())
    missing = [path for path in finished if path not in on_disk or path not in in_history]
    window.close()
    total = sum(counts.values())
    print(f"{total} actions in {args.minutes:g} min: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    print(f"{len(finished)} images finished; {len(on_disk)} on disk; {len(missing)} missing from disk or history; "
          f"jobs: " + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())))
    for error in errors:
        print(error, file=sys.stderr)
    print(f"{len(errors)} exceptions or Qt errors")
    return 0 if not errors and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
