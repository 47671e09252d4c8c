"""Capture: the sync round, backfill and re-check walk, deletion confirmation and media downloads; imports sources, net, alerts, config and storage."""
