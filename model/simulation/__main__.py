"""``python -m model.simulation``: see ``model.simulation.loop``."""
from model.simulation.loop import main

raise SystemExit(main())
