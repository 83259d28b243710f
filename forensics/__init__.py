"""forensics: incident forensics from access logs. Importing it imports no CLI library."""

__version__ = "0.1.0"
