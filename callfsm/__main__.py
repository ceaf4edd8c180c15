"""``python -m callfsm``: the same as the ``callfsm`` command."""

from ._cli import main

raise SystemExit(main())
