"""The web console at /console: server-rendered pages that act through the API's operations."""
