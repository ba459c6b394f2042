"""The offline emulator: moto as the AWS control plane, local runtimes as the SageMaker data plane.

``control_plane`` starts moto and deploys the real stack, ``integrations`` hooks moto's ASL
interpreter (SageMaker, Lambda, AWS-semantics corrections), ``runtimes`` run the jobs and
endpoints, ``run`` drives ``make local-pipeline``.
"""
