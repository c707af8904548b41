"""The pure injection engine: wire types, plugins, settings, decide, render and patch (no I/O on the admission path)."""
