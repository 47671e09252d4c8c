"""Release pages: following links to chosen sites, fetching, extraction."""
