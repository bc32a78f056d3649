"""Storage: the backend protocol every store implements, token codecs, and the filter language."""
