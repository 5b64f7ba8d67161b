"""incidents: the incident aggregate, its numbering and its lifecycle."""
