"""Deploy tooling for CI and operators: artifacts, stack, image, endpoint, executions."""
