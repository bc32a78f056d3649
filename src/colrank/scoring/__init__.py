"""The score, at the bottom of the query path: every stage imports it, it imports no stage.

- :mod:`colrank.scoring.records`: what the stages hand on (the recall record, ColBERT scores).
- :mod:`colrank.scoring.fusion`: pure fusion functions (calibrated, interpolation, RRF).
- :mod:`colrank.scoring.final`: the final score and the one place a :class:`~colrank.Hit` is made.
"""
