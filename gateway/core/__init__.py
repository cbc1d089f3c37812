"""gateway core package."""
