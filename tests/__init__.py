"""tterm's tests. A regular package on purpose: schwab-py (a test dependency) ships a top-level
``tests`` package in its wheel, and an installed regular package would otherwise shadow this
directory as a namespace package, breaking every ``from tests.fakes import ...``."""
