"""The read pipeline: the recorder's buffered events decoded (decode), made Arrow columns
(spill) and polars frames (frames). The store persists these columns; the Trace asks for
the frames."""
