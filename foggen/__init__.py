"""The ``foggen`` command: the composition layer on top of every package.

``foggen.cli`` builds the parser from one module per subcommand (``foggen.commands``), maps
errors to exit codes through one table (``foggen.exits``) and builds every config's flags with
one builder (``foggen.flags``). Each subcommand imports its package lazily, so ``foggen ask``
never loads torch, matplotlib or FastAPI. Nothing imports ``foggen``.
"""
