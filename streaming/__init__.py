"""VoxCast server: HTTP API, DICOMweb, render sessions and streaming."""
