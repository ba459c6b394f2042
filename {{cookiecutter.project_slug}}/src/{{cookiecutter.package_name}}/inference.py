"""The service layer: how a request becomes model input and a prediction becomes the answer. Yours.

SageMaker's convention (its inference toolkit and framework containers): define any of

    input_fn(request_body, content_type[, context])  -> data        the body (bytes) to model input
    predict_fn(data, model[, context])               -> prediction  model: the loaded Predictor
    output_fn(prediction, accept[, context])         -> bytes, str or (body, content_type)

between the REPLACE THIS fences below, and the endpoint calls yours; each one you do not define
is the project's default, called directly at the default's speed. The defaults, written out as
code, are the commented lines below (uncomment one to start from it; a test checks that they are
the defaults). The README's "The service layer" shows a full example: ids echoed back, one
record without a wrapper, a business decision field, the top classes.

- ``content_type`` has no parameters ("text/csv"); the defaults read text/csv, application/json
  and application/jsonlines (415 otherwise; your input_fn receives any type and decides).
- ``accept`` is the type the client asked for, negotiated from the Accept header (the request's
  own type when there is none).
- ``context`` (optional last parameter, as in the inference toolkit): ``context.model`` (the
  Predictor), ``context.schema`` (feature names and kinds, for ``codecs.decode_records``) and
  ``context.encoder`` (the default answer: ``records(prediction)`` and ``encode(prediction, accept)``).
- There is no ``model_fn``: the model is always loaded by the project's checked loader
  (serving/compiled.py, ``Predictor.load``), never by code here.

Errors: raise ``ValueError`` (or ``serving.errors.BadRequest``, ``UnsupportedMediaType``,
``NotAcceptable``) in input_fn or output_fn for a 4xx carrying your message; anything else is a
500 whose log line names your function and line. ``make local-pipeline`` compares what the endpoint
answers with what these functions answer in process, and the tests run whatever you define.
"""

from __future__ import annotations

# ---- REPLACE THIS WITH YOUR OWN CODE ----
# import numpy as np
#
# from .predictor import Predictions, Predictor
# from .serving import codecs
# from .serving.handlers import Context
#
#
# def input_fn(request_body: bytes, content_type: str, context: Context) -> np.ndarray:
#     """CSV rows, JSON {"instances": [...]} or JSON Lines records: lists in feature order, or
#     objects of feature: value (README, "Calling the endpoint")."""
#     return codecs.decode(request_body, content_type, context.schema)
#
#
# def predict_fn(data: np.ndarray, model: Predictor) -> Predictions:
#     """Labels and positive-class scores, probabilities or values (predictor.Predictions)."""
#     return model.predict(data)
#
#
# def output_fn(prediction: Predictions, accept: str, context: Context) -> bytes:
#     """JSON {"predictions": [...]}, JSON Lines (one record a line) or CSV, as Accept asks."""
#     return context.encoder.encode(prediction, accept)
# ----
