"""gateway est package."""
