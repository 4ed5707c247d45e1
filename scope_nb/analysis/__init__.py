"""Pure functions over the frames: reports and frames out, no hooks, no globals."""
