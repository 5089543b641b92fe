"""Object catalogs: opening a release's HATS catalog, importing a user's own table, the Rubin releases."""
