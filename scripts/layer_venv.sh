#!/usr/bin/env bash
# layer_venv.sh SHARED NEW: makes NEW a venv layered on the venv SHARED, without changing SHARED.
#
# NEW is an empty venv of the same interpreter whose site-packages holds one .pth line naming SHARED's
# site-packages, so every package installed there imports here. SHARED's commands (pytest, kopf,
# lint-imports, ...) get a copy in NEW/bin that runs NEW's python; binaries are linked. pip run with
# NEW's python installs into NEW only (the editable install of a checkout, anything SHARED lacks), and
# refuses to uninstall what lives in SHARED. Deleting NEW's checkout leaves SHARED as it was.
set -euo pipefail
shared=$(cd "$1" && pwd)
new=$2
base=$("$shared/bin/python" -c 'import sys; print(sys._base_executable)')
"$base" -m venv --without-pip "$new"
site() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
echo "$(site "$shared/bin/python")" > "$(site "$new/bin/python")/_rlaif_shared_venv.pth"
python=$(cd "$new" && pwd)/bin/python
for tool in "$shared"/bin/*; do
  name=$(basename "$tool")
  case "$name" in python*|activate*|Activate*|pip*) continue ;; esac
  [ -e "$new/bin/$name" ] || [ -d "$tool" ] && continue
  if head -c 2 "$tool" | grep -q '^#!' && head -n 1 "$tool" | grep -q 'python'; then
    { echo "#!$python"; tail -n +2 "$tool"; } > "$new/bin/$name"
    chmod +x "$new/bin/$name"
  else
    ln -s "$tool" "$new/bin/$name"
  fi
done
