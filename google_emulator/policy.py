"""Chrome Policy API v1 (placeholder, filled in by the policy milestone)."""
