"""gateway acme package."""
