"""Lets ``python -m ecrd`` run the command line."""

from ecrd.cli.main import main

raise SystemExit(main())
