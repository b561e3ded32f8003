"""Volumes in and segmentations out: readers, geometry, exporters, previews."""
