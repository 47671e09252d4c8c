"""Where posts come from: the t.me web preview, later a Telegram account."""
