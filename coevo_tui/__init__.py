"""coevo: data-prompt co-evolution in the terminal."""

__version__ = "0.1.0"
