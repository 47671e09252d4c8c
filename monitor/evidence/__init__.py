"""Evidence of what was captured: RFC 3161 time-stamps of the chain (tsa.py) and citation packages (cite.py, WACZ); imports config, net (to ask authorities), read (WARC records) and storage."""
