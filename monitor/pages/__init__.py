"""Release pages: the queue of linked pages on followed sites, fetching (browser included) and extraction; imports net, alerts, config and storage."""
