#!/bin/sh
# Runs one command of a CI job that holds AWS credentials (the `.aws` jobs of .gitlab-ci.yml) with
# the job's GitLab identity token as web-identity credentials, and nothing else of the job's
# environment. Pipeline variables (a trigger, a schedule, the "Run pipeline" form) override every
# variable the CI file sets, so a PYTHONPATH, PYTHONSTARTUP, LD_PRELOAD, PATH, AWS_ENDPOINT_URL_STS,
# AWS_CA_BUNDLE or HTTPS_PROXY given that way would otherwise choose the code that runs, or where
# the token goes (issue 22).
#
#   sh ci/with-aws.sh COMMAND [ARG...]
#
# The command gets only: a literal PATH (the artifact's docker client first), the deploy CLI the
# deploy:cli job installed (PYTHONPATH=.ci/site), the region, the role and web-identity variables,
# CFN_ROLE_ARN and CI_COMMIT_SHA (values, not code), and the docker daemon of the job's dind service.
set -eu
: "${AWS_ROLE_ARN:?Set the AWS_ROLE_ARN CI/CD variable (stack output CiRoleArn)}"
: "${GITLAB_OIDC_TOKEN:?no GITLAB_OIDC_TOKEN: run this only in a job with id_tokens (extends .aws)}"
here=$(pwd)
# A private directory (mktemp -d: mode 0700) for the token file and the docker login.
private=$(mktemp -d)
printf '%s' "$GITLAB_OIDC_TOKEN" > "$private/token"
exec env -i \
    PATH="$here/.ci/bin:/usr/local/bin:/usr/bin:/bin" \
    HOME="$private" \
    PYTHONPATH="$here/.ci/site" \
    PYTHONNOUSERSITE=1 \
    AWS_REGION={{ cookiecutter.aws_region }} \
    AWS_DEFAULT_REGION={{ cookiecutter.aws_region }} \
    AWS_ROLE_ARN="$AWS_ROLE_ARN" \
    AWS_WEB_IDENTITY_TOKEN_FILE="$private/token" \
    AWS_ROLE_SESSION_NAME="gitlab-${CI_PROJECT_ID:-0}-${CI_PIPELINE_ID:-0}" \
    CFN_ROLE_ARN="${CFN_ROLE_ARN:-}" \
    CI_COMMIT_SHA="${CI_COMMIT_SHA:-}" \
    DOCKER_HOST=tcp://docker:2376 \
    DOCKER_TLS_VERIFY=1 \
    DOCKER_CERT_PATH=/certs/client \
    "$@"
