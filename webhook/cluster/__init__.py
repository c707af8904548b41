"""Everything that talks to an API server: one client, list and watch, caches, discovery, install, check and mode set."""
