"""Training: one function that fits any model family, used by `aegan train` and the DVC train stage."""
