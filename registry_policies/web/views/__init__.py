"""Self-service pages, one module per topic. Views parse, call one service or selector, render."""
