"""The four container steps side by side: train, serve, validate, evaluate."""
