"""One module per subcommand: parse options, call the engine, write the store, print."""
