"""Reads of the ChromeOS integration that pages share, one module per area."""
