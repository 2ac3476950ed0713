"""The ``council`` commands, one module per concern; ``cli.py`` gathers them."""
