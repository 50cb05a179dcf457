"""The ``sbert`` command line."""
