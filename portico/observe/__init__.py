"""What a router reports about itself: counters and the access log."""
