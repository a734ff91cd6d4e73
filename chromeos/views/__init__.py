"""Console pages of the ChromeOS integration, one module per area; each exposes ``urlpatterns``."""
