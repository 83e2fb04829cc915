"""`python -m streaming --symbols BTCUSDT ...`: the streaming sidecar (same as `marketdata stream`)."""

from streaming.cli import main

if __name__ == "__main__":
    main()
