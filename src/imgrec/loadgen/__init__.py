"""A workload generator for any imgrec deployment (or the course's original web tier).

Pure parts (expected answers, answer parsing, statistics, the report) are apart from the I/O
(``runner`` with httpx, ``plot`` with matplotlib) so they can be tested without a server.
"""
