#!/usr/bin/env bash
# The peers' virtualenvs under .peers/ (git-ignored), each from PyPI with every version pinned:
#   .peers/freqtrade   freqtrade 2026.9                      (requirements-freqtrade.txt)
#   .peers/cryptofeed  cryptofeed 3.0.1, needs Python 3.13   (requirements-cryptofeed.txt)
#   .peers/rest        python-binance 1.0.37 and ccxt 4.5.90 (requirements-rest.txt)
# Idempotent: a venv whose marker records the sha256 of its requirements file is complete and skipped;
# a half-made one (no marker, or other requirements) is made again from scratch.
# The interpreter: $PEERS_PYTHON, else pyenv's 3.13.0, else python3.13 on PATH (freqtrade takes 3.11-3.13,
# cryptofeed 3.0 needs 3.13, so one 3.13 serves all three).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
peers="$repo/.peers"

python="${PEERS_PYTHON:-}"
if [[ -z "$python" ]]; then
  for candidate in /root/.pyenv/versions/3.13.0/bin/python "$(command -v python3.13 || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then python="$candidate"; break; fi
  done
fi
if [[ -z "$python" ]] || ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'; then
  echo "setup.sh: need a Python 3.13 (cryptofeed 3.0 requires it); set PEERS_PYTHON=/path/to/python3.13" >&2
  exit 2
fi

mkdir -p "$peers"
for name in freqtrade cryptofeed rest; do
  requirements="$here/requirements-$name.txt"
  venv="$peers/$name"
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && "$(cat "$venv/.complete" 2>/dev/null || true)" == "$want" ]]; then
    echo "$name: complete ($venv)"
    continue
  fi
  echo "$name: creating $venv with $("$python" --version)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  "$venv/bin/python" -m pip check
  echo "$want" > "$venv/.complete"
  echo "$name: done"
done
