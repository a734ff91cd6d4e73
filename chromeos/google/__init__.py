"""Everything that talks to Google lives in this package; nothing else imports the Google libraries."""
