"""Watching the server: request and job logs, metrics under CloudWatch's names, the audit trail, health."""
