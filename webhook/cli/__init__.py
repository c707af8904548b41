"""The `meshswitch` command: argument parsing and subcommands, thin over the engine, server and cluster packages."""
