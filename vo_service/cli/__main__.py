"""``python -m vo_service.cli``: the ``vosim`` command (``torchrun … -m vo_service.cli``)."""

from .command import main

raise SystemExit(main())
