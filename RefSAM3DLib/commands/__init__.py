"""One module per `refsam3d` sub-command; cli.py only wires them to argparse."""
