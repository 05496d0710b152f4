"""``python -m lockerd`` runs the same command line as the ``lockerd`` script."""

from lockerd.cli import main

raise SystemExit(main())
