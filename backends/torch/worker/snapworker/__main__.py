"""python3 -m snapworker: the torch backend's worker process (see server.py)."""
import sys

from .server import main

sys.exit(main())
