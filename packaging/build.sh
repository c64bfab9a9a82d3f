#!/usr/bin/env bash
# Build sd-desktop as a standalone one-folder program with PyInstaller, then run the built program's
# self-test; exits non-zero when either fails.
#
#   bash packaging/build.sh        ->  dist/sd-desktop/sd-desktop   (macOS: dist/sd-desktop.app)
#
# PYTHON picks the interpreter (default python3; the build bundles that interpreter's torch and Qt).
# SD_DESKTOP_DIST and SD_DESKTOP_WORK move the output (default dist/) and work (build/pyinstaller/) folders.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DIST=${SD_DESKTOP_DIST:-dist}
WORK=${SD_DESKTOP_WORK:-build/pyinstaller}

if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "build.sh: installing PyInstaller" >&2
    "$PYTHON" -m pip install "pyinstaller>=6.0"
fi

started=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" packaging/sd-desktop.spec
echo "build.sh: built in $(( $(date +%s) - started )) s: $(du -sh "$DIST/sd-desktop" | cut -f1) in $DIST/sd-desktop" >&2

if [ "$(uname -s)" = Linux ]; then  # the menu entry, metainfo and their installer travel with the program
    cp packaging/linux/install.sh packaging/linux/io.github.sd_desktop.sd_desktop.desktop \
        packaging/linux/io.github.sd_desktop.sd_desktop.metainfo.xml "$DIST/sd-desktop/"
fi

case "$(uname -s)" in
    MINGW*|MSYS*|CYGWIN*) program="$DIST/sd-desktop/sd-desktop-cli.exe" ;;  # the console twin of sd-desktop.exe
    Darwin) program="$DIST/sd-desktop.app/Contents/MacOS/sd-desktop" ;;
    *) program="$DIST/sd-desktop/sd-desktop" ;;
esac

"$program" --version
"$program" --self-test   # no Qt, no display needed; exits 1 with one line when something is wrong
