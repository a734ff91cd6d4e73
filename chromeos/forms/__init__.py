"""Forms of the ChromeOS integration, one module per area."""
