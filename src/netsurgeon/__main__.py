"""``python -m netsurgeon`` runs the command line."""

from netsurgeon.cli import main

raise SystemExit(main())
