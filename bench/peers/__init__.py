"""This project side by side with its peers (freqtrade, cryptofeed, python-binance, ccxt) on the local Binance.

Why a package of its own: the peers live in their own virtualenvs (`.peers/`, made by `setup.sh`) and are
driven as subprocesses through the small wrappers in `wrappers/`, so nothing here imports a peer, and
nothing in a wrapper imports this project. `run.py` is the entry point (`python -m bench.peers.run`).
"""
