"""Loading and cleaning data; no Flyte here."""
