"""Where the peers' interpreters and the project under test are, and how to start each.

Why a `--project-tree`: the project is run as `python -m marketdata_assets.cli.main` with PYTHONPATH set to
a source tree, by default this checkout; pointing it at an exported commit (`git archive HEAD | tar -x -C
DIR`) measures that commit while the checkout itself is being edited. The simulator and the truth always
come from this checkout (`marketdata_sim`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO

PEERS_DIR = REPO / ".peers"
WRAPPERS = Path(__file__).resolve().parent / "wrappers"
VENVS = {"freqtrade": "freqtrade", "cryptofeed": "cryptofeed", "python-binance": "rest", "ccxt": "rest"}


class PeerMissingError(SystemExit):
    """A peer's virtualenv is not there: run bench/peers/setup.sh first."""


def peer_python(peer: str) -> str:
    python = PEERS_DIR / VENVS[peer] / "bin" / "python"
    if not python.exists():
        raise PeerMissingError(f"{peer}: {python} is missing; run `bash bench/peers/setup.sh` first")
    return str(python)


def wrapper(name: str) -> str:
    return str(WRAPPERS / name)


@dataclass(frozen=True)
class Project:
    """The project under test: its interpreter (this venv) and the source tree put first on its path.

    Run its processes with a scratch folder as cwd: `python -m` puts the cwd before PYTHONPATH.
    """

    tree: Path

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.tree)}

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "marketdata_assets.cli.main", *args]

    def script(self, path: Path, *args: str) -> list[str]:
        """A script run by path: its own folder, not the current one, goes first on sys.path."""
        return [sys.executable, str(path), *args]
