"""realtime package."""
