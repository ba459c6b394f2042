"""Project settings chosen when the project was generated (cookiecutter answers).

The one module with baked-in values: code reads them from here, never from copies.
Change them here (and in infra/template.yaml parameters) to retune the pipeline.
"""

from __future__ import annotations

PROJECT_NAME = "{{ cookiecutter.project_name }}"
PROJECT_SLUG = "{{ cookiecutter.project_slug }}"
PACKAGE_NAME = "{{ cookiecutter.package_name }}"

AWS_REGION = "{{ cookiecutter.aws_region }}"
S3_BUCKET = "{{ cookiecutter.s3_bucket }}"
ARTIFACT_BUCKET = f"{S3_BUCKET}-artifacts"
ECR_REPOSITORY = "{{ cookiecutter.ecr_repository }}"
STACK_NAME = PROJECT_SLUG
ENDPOINT_NAME = f"{PROJECT_SLUG}-endpoint"
# The moving image tag the state machine trains with; CI also pushes the commit SHA tag.
IMAGE_TAG = "latest"

TRAINING_INSTANCE_TYPE = "{{ cookiecutter.training_instance_type }}"
INFERENCE_INSTANCE_TYPE = "{{ cookiecutter.inference_instance_type }}"
INITIAL_INSTANCE_COUNT = {{ cookiecutter.initial_instance_count }}
SCHEDULE_EXPRESSION = "{{ cookiecutter.schedule_expression }}"

# Drift: a feature drifts when PSI > PSI_THRESHOLD or the KS / chi-squared p-value < KS_PVALUE.
PSI_THRESHOLD = {{ cookiecutter.psi_threshold }}
KS_PVALUE = {{ cookiecutter.ks_pvalue }}
# "retrain": drift is reported and training goes on; "block": drift stops the run.
DRIFT_POLICY = "{{ cookiecutter.drift_policy }}"

# What the model predicts ("binary", "multiclass", "regression" or "ranking") and the library model.py uses.
PROBLEM_TYPE = "{{ cookiecutter.problem_type }}"
MODEL_LIBRARY = "{{ cookiecutter.model_library }}"

# Model gate: promote when metric >= GATE_MINIMUM and >= production - GATE_TOLERANCE. For a metric
# where lower is better (rmse, mae, mape, log_loss) GATE_MINIMUM is a maximum and the candidate may
# be at most GATE_TOLERANCE above production.
GATE_METRIC = "{{ cookiecutter.gate_metric }}"
GATE_MINIMUM = {{ cookiecutter.gate_minimum }}
GATE_TOLERANCE = {{ cookiecutter.gate_tolerance }}
GATE_HIGHER_IS_BETTER = {{ "False" if cookiecutter.gate_metric in ["rmse", "mae", "mape", "log_loss"] else "True" }}

ENABLE_HPO = {{ "True" if cookiecutter.enable_hpo == "y" else "False" }}
NOTIFICATION_EMAIL = "{{ cookiecutter.notification_email }}"
GITLAB_PROJECT_PATH = "{{ cookiecutter.gitlab_project_path }}"

# The data contract: CSV with a header row; this column holds the label, all others are features.
LABEL_COLUMN = "{{ cookiecutter.label_column }}"
# Columns that are not plain features (column_roles.py): "id" (never a feature, echoed by
# inference.py), "timestamp" (orders the offline split), "group" (each group on one side of the
# split), "weight" (the estimator's sample_weight), or a feature kind ("numeric", "categorical",
# "text") to overrule detection. Columns not named here are detected, each detection printed once.
COLUMN_ROLES: dict[str, str] = {% if not cookiecutter.column_roles.strip(" ,") %}{}{% else %}{
{%- for pair in cookiecutter.column_roles.split(",") if pair.strip() %}
    "{{ pair.rpartition(":")[0].strip() }}": "{{ pair.rpartition(":")[2].strip() }}",
{%- endfor %}
}{% endif %}

# A business threshold for the service layer (inference.py): the README's example answers
# "decision": "approve" when the {{ {'binary': 'positive-class score', 'multiclass': 'top class probability', 'regression': 'predicted value', 'ranking': 'ranking score'}[cookiecutter.problem_type] }} is at least this, else
# "review". The default answer does not read it{% if cookiecutter.problem_type == "binary" %} (its label applies the model's own
# decision threshold, the `threshold` hyperparameter){% endif %}.
DECISION_THRESHOLD = {{ {'binary': '0.8', 'multiclass': '0.8', 'regression': '150.0', 'ranking': '1.0'}[cookiecutter.problem_type] }}

# Model tarballs (model.tar.gz) are refused before extraction above these caps (tarballs.extract):
# a small archive can unpack to gigabytes, or hold enough members to exhaust inodes.
MAX_ARCHIVE_BYTES = 2 * 1024**3
MAX_ARCHIVE_MEMBERS = 10_000

# The compiled predictor (serving/compiled.py): training also exports model.onnx, verified against the
# library on the holdout within 1e-6, and serving answers through ONNX Runtime without importing the
# library (1-row predict ~6-20 us against ~0.1-1 ms; start-up without scikit-learn and SciPy; figures
# in benchmarks/RESULTS.md). float32 is tried, then float64. A model that does not convert or verify in
# either (e.g. an estimator the converters do not know) is served by the
# library, with a line in the training log saying why. False: never export.
COMPILED_PREDICTOR = True
