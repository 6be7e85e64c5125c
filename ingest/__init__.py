"""DICOM ingest: receivers, validation and quarantine, the catalog, series assembly."""
