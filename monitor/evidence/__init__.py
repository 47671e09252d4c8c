"""Evidence of what was captured: RFC 3161 time-stamps of the chain, and citation packages (WACZ)."""
