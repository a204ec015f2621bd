"""The numbers behind the figures and the claims: run records reduced to tables, no drawing.

    retrieval   paper B's run tables, learning-rate choice, rungs, curves, data efficiency,
                extrapolation and duplicates tables, Tables 1-2
    position    paper B's position retrieval: per-position accuracy, embedding geometry, gates
    scale       paper A at larger scale: length curves, Table 1
    ladder      difficulty ladders: examples to a threshold per rung, trends

Below lib.claims and lib.plots; it reads results through lib.results, never lib.sweeps
(tests/test_layering.py).
"""
