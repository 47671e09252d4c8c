"""The network: the one HTTP client, body reading within caps, the back-off ladder, the address guard; imports only config, errors and log."""
