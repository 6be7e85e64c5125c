"""VoxCast render engine: patient-space geometry and rendering kernels (no I/O)."""
