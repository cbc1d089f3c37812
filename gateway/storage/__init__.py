"""gateway storage package."""
