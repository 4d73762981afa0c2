"""``wsol compare``: candidates run under a held-out protocol, side by side."""
