"""gitml's core: git access, formats, config, errors and ids. Imports no service."""

import logging

# The library never prints: without this, Python's last-resort handler would write warnings to stderr.
logging.getLogger("gitml").addHandler(logging.NullHandler())
