# Sourced by scripts/sandbox and scripts/test: make .venv (once) and install calsync into it.
# Only a Python >= 3.11 on PATH is needed; everything else comes from the package index.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CALSYNC_VENV:-$root/.venv}"
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
stamp="$venv/.calsync-installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -e "$root${extras:+[$extras]}" >&2
  touch "$stamp"
fi
