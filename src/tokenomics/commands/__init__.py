"""One module per subcommand: parse options, call trading/ or research/, print."""
