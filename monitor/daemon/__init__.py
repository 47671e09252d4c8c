"""The daemon: lifecycle (``service``), scheduled jobs, health verdicts and the writer lock; imports every part below the command line."""
