"""One emitter per source system: simulated records in, that system's export files out.

Emitters draw nothing at random; they print keys, dates and document ids and
hand the frames to `export.Landing`, which shapes and writes the files.
"""
