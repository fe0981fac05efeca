"""Watch rules, digest rendering and email delivery."""
