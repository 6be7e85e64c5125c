"""Rendering kernels: plain functions over arrays (numpy on the CPU, cupy on a GPU)."""
