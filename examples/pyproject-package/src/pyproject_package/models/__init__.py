"""Analysis of cleaned records; no Flyte here."""
