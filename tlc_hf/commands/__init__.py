"""One module per `tlc-hf` subcommand."""
