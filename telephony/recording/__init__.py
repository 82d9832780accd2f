"""Per-speaker call recording and retrieval (arrives with the recording issue)."""
