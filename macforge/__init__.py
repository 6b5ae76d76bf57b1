"""macforge command-line application (``macforge ...`` / ``python -m macforge``)."""

__version__ = "0.1.0"
