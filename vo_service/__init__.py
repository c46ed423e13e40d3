"""Floor 3: the Virtual Observatory service (TAP, DataLink, similarity, pages) and the CLI."""
