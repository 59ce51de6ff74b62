"""Data: sources and downloads -> readers -> prepare (to [-1, 1] tensors) -> the in-memory datamodule."""
