#!/usr/bin/env bash
# Install a standalone sd-desktop build for the current user: the program, a `sd-desktop` command,
# the menu entry, the AppStream metainfo and the icons. No root needed.
#
#   ./install.sh                     from inside a built folder (build.sh copies this script there)
#   bash packaging/linux/install.sh [PROGRAM_FOLDER]   from a checkout (default: dist/sd-desktop)
#   ./install.sh --uninstall         remove what it installed
#
# PREFIX (default ~/.local): the program goes to PREFIX/lib/sd-desktop, the command to PREFIX/bin,
# the rest under PREFIX/share. System-wide: sudo PREFIX=/usr/local ./install.sh
set -euo pipefail

APP_ID=io.github.sd_desktop.sd_desktop
PREFIX=${PREFIX:-$HOME/.local}
here=$(cd "$(dirname "$0")" && pwd)
lib="$PREFIX/lib/sd-desktop"
share="$PREFIX/share"

refresh() {
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$share/applications" || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$share/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$lib"
    rm -f "$PREFIX/bin/sd-desktop" "$share/applications/$APP_ID.desktop" "$share/metainfo/$APP_ID.metainfo.xml"
    rm -f "$share"/icons/hicolor/*/apps/"$APP_ID".png "$share/icons/hicolor/scalable/apps/$APP_ID.svg"
    refresh
    echo "sd-desktop removed from $PREFIX"
    exit 0
fi

if [ $# -ge 1 ]; then
    program=$(cd "$1" && pwd)
elif [ -x "$here/sd-desktop" ]; then
    program=$here
else
    program=$(cd "$here/../../dist/sd-desktop" 2>/dev/null && pwd) || {
        echo "install.sh: no build found; run packaging/build.sh first, or name the built folder" >&2; exit 1; }
fi
[ -x "$program/sd-desktop" ] || { echo "install.sh: $program/sd-desktop is not a program" >&2; exit 1; }
icons=$(find "$program" -type d -path '*resources/icons' | head -n 1)
[ -n "$icons" ] || { echo "install.sh: no resources/icons in $program" >&2; exit 1; }

if [ "$program" != "$lib" ]; then
    rm -rf "$lib"
    mkdir -p "$(dirname "$lib")"
    cp -a "$program" "$lib"
    icons=$lib/${icons#"$program"/}
fi
mkdir -p "$PREFIX/bin" "$share/applications" "$share/metainfo" "$share/icons/hicolor/scalable/apps"
ln -sf "$lib/sd-desktop" "$PREFIX/bin/sd-desktop"

# the entry names the program by its full path: ~/.local/bin is not on every desktop session's PATH
sed -e "s|^Exec=sd-desktop|Exec=\"$lib/sd-desktop\"|" -e "s|^TryExec=sd-desktop|TryExec=$lib/sd-desktop|" \
    "$here/$APP_ID.desktop" > "$share/applications/$APP_ID.desktop"
cp "$here/$APP_ID.metainfo.xml" "$share/metainfo/"
for png in "$icons"/sd-desktop-*.png; do
    size=$(basename "$png" .png); size=${size#sd-desktop-}
    mkdir -p "$share/icons/hicolor/${size}x${size}/apps"
    cp "$png" "$share/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
done
cp "$icons/sd-desktop.svg" "$share/icons/hicolor/scalable/apps/$APP_ID.svg"
refresh
echo "sd-desktop installed in $lib; start it from the menu or with $PREFIX/bin/sd-desktop"
