"""walkcover's version, in a leaf module so every layer can print it.

It is the one place the version is set: ``pyproject.toml`` reads it from here
(``[tool.hatch.version]``), so ``walkcover --version``, the reports, ``run.json`` and what pip
installed never disagree, and reading it costs no package-metadata lookup at import.
"""

__version__ = "0.1.0"
