"""The ``mpds`` command and the demo."""
