"""One router module per resource: ``analyze``, ``jobs``, ``health``."""
