"""Keyword alerts: rules, matches written with the content, delivery through Apprise; imports net, config and storage."""
