"""Open interest / long-short `metrics`, order book `book_depth` (daily archive) and `ticker_24h` (REST)."""
