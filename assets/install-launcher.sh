#!/bin/sh
# Add FaceTracker to the desktop's application menu (and the Desktop folder, if there is one),
# pointing at this bundle folder's executable. Run it again after moving the folder.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
mkdir -p "$apps"
launcher="$apps/facetracker.desktop"
cat > "$launcher" <<DESKTOP
[Desktop Entry]
Type=Application
Version=1.0
Name=FaceTracker
GenericName=Face detector trainer
Comment=Build your own real-time face detector: collect, label, train and track
Exec="$here/FaceTracker"
Icon=$here/facetracker.png
Terminal=false
Categories=Graphics;Education;Science;
Keywords=face;detection;webcam;camera;machine learning;keras;
StartupNotify=true
StartupWMClass=facetracker
DESKTOP
chmod +x "$launcher"
desktop_dir=$(command -v xdg-user-dir >/dev/null 2>&1 && xdg-user-dir DESKTOP || echo "$HOME/Desktop")
if [ -d "$desktop_dir" ] && [ "$desktop_dir" != "$HOME" ]; then
    cp "$launcher" "$desktop_dir/FaceTracker.desktop"
    chmod +x "$desktop_dir/FaceTracker.desktop"
fi
echo "FaceTracker added to the application menu: $launcher"
