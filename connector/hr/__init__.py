"""HR input: sources (CSV, JSON Lines) and validated records."""
