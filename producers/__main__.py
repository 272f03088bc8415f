"""``python -m coinfeed.producers``: same as ``coinfeed producer``."""

from __future__ import annotations

from coinfeed.producers.cli import main

raise SystemExit(main())
