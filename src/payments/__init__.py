"""Payment provider clients (a lower layer, like src/auth)."""
