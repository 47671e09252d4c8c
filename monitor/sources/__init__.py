"""Where posts come from: the t.me web preview and a Telegram account, as the project's own records, and the links found in them; imports net, config and storage's records."""
