"""Pure vectorised numerics (Black-76, implied vol, ...); no I/O, input assumed validated."""
