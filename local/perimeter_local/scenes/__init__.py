"""Demo scenes after the core one: each module has ``TITLE`` and ``play(demo)``."""
