"""W3C extended log files (`.log`), as CloudFront standard logs and IIS write them (SPEC §2.5).

A `#Fields:` directive names the columns (split on spaces); each line is split on tabs when
it holds one, else on spaces; `-` is an empty value; other `#Name:` lines are directives. A
`#Fields:` line that changes the columns switches them from there on; a record before any
`#Fields:` fails the file. The splitting itself is readers/delimited.py's, dialect W3C.
"""

from __future__ import annotations

from forensics.ingest.readers.base import Reader
from forensics.ingest.readers.delimited import W3C, reader_of

READER = Reader("W3C", (".log",), reader_of(W3C))
