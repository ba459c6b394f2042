"""Model serving: the SageMaker inference contract (/ping, /invocations, /execution-parameters).

Constants live here, not in app.py, so the ``serve`` launcher can read them without importing
scikit-learn: the launcher execs gunicorn, which imports the model stack once, in its master.
"""

# SageMaker's payload limit for real-time endpoints (and the MaxPayloadInMB advertised).
MAX_PAYLOAD_MB = 6
MAX_PAYLOAD_BYTES = MAX_PAYLOAD_MB * 1024 * 1024
