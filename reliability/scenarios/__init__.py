"""One module per fault scenario; each registers itself with `reliability.core.scenario`."""
