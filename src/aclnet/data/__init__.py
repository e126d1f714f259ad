"""Data: file formats, annotation files, transforms, datasets and generated data."""
