"""Reading the archive out: the search language, word diffs, export, WARC, citations (WACZ) and browse; imports config and storage, nothing that captures."""
