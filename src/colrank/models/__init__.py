"""Models: device and dtype choice, model loading, and the dense and ColBERT encoders."""
