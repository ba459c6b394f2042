"""Data drift before training, the model gate after it, and the HTML report of both.

- ``profile``: the compact reference profile written next to the model at training time.
- ``schema``: hard checks (columns, types, missing rate, ranges) that fail the step.
- ``data_drift``: PSI, KS and chi-squared per feature against the profile.
- ``gate``: promote or block a candidate model; prediction drift of the production model.
- ``validate`` / ``evaluate``: the processing-job entrypoints; ``report``: their HTML page, whose
  pictures ``charts`` draws as inline SVG.
"""
