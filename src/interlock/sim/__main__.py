"""``python -m interlock.sim [--port P] …``: the same flags as ``interlock sim``."""

from __future__ import annotations

from interlock.sim.command import main

if __name__ == "__main__":
    main()
