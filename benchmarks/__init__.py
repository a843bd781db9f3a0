"""Performance harness: each benchmark prints a table with the ceiling beside the figure.

Run all with ``make benchmarks`` (``python -m benchmarks``) or one with
``python -m benchmarks.emulator --help``. Benchmarks print; tests assert.
"""
