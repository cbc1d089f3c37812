"""CA connectors: one module per certificate authority, none importing the gateway."""
