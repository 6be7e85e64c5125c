"""Volume cache: the Zarr volume format, storage tiers and in-memory caches."""
