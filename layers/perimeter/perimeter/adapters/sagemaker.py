"""SageMaker adapter: the reads that follow an endpoint to the models, subnets and groups
that serve it.

Plain boto3 so it works against real AWS; where moto lacks a call (``update_endpoint``) or
reads a field back wrong (``EnableNetworkIsolation``), the tests use botocore's Stubber with
responses shaped from the API reference. A resource that no longer exists is ``None``:
SageMaker answers ``ValidationException`` "Could not find ..." rather than a NotFound code.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from perimeter.adapters.ec2 import error_code
from perimeter.model_posture.evaluate import ModelFacts, NotebookFacts


def _gone(exc: ClientError) -> bool:
    if error_code(exc) in ("ResourceNotFound", "ResourceNotFoundException"):
        return True
    message = str(exc.response.get("Error", {}).get("Message", ""))
    # Notebooks answer "RecordNotFound" for a missing name.
    lowered = message.lower()
    gone = "could not find" in lowered or "recordnotfound" in lowered
    return error_code(exc) == "ValidationException" and gone


class SageMakerAdapter:
    def __init__(self, client: Any) -> None:
        self._sm = client

    def model(self, name: str) -> ModelFacts | None:
        try:
            m = self._sm.describe_model(ModelName=name)
        except ClientError as exc:
            if _gone(exc):
                return None
            raise
        vpc = m.get("VpcConfig") or {}
        return ModelFacts(
            name=m.get("ModelName", name),
            arn=m.get("ModelArn", ""),
            subnets=tuple(vpc.get("Subnets") or ()),
            security_groups=tuple(vpc.get("SecurityGroupIds") or ()),
            network_isolation=bool(m.get("EnableNetworkIsolation", False)),
            execution_role=m.get("ExecutionRoleArn"),
        )

    def domain(self, domain_id: str) -> dict[str, Any] | None:
        """DescribeDomain as SageMaker answers it (None: the domain is gone)."""
        try:
            return dict(self._sm.describe_domain(DomainId=domain_id))
        except ClientError as exc:
            if _gone(exc):
                return None
            raise

    def endpoint_config_models(self, name: str) -> tuple[str, list[str]] | None:
        """(config ARN, model names of its production and shadow variants)."""
        try:
            c = self._sm.describe_endpoint_config(EndpointConfigName=name)
        except ClientError as exc:
            if _gone(exc):
                return None
            raise
        variants = list(c.get("ProductionVariants") or []) + list(c.get("ShadowProductionVariants") or [])
        models = [v["ModelName"] for v in variants if v.get("ModelName")]
        return str(c.get("EndpointConfigArn", "")), list(dict.fromkeys(models))

    def endpoint_config_name(self, endpoint: str) -> str | None:
        try:
            e = self._sm.describe_endpoint(EndpointName=endpoint)
        except ClientError as exc:
            if _gone(exc):
                return None
            raise
        return e.get("EndpointConfigName")

    def notebook(self, name: str) -> NotebookFacts | None:
        try:
            n = self._sm.describe_notebook_instance(NotebookInstanceName=name)
        except ClientError as exc:
            if _gone(exc):
                return None
            raise
        return NotebookFacts(
            name=n.get("NotebookInstanceName", name),
            arn=n.get("NotebookInstanceArn", ""),
            subnet=n.get("SubnetId") or None,
            security_groups=tuple(n.get("SecurityGroups") or ()),
            direct_internet=str(n.get("DirectInternetAccess", "Enabled")) == "Enabled",
            status=str(n.get("NotebookInstanceStatus", "")),
        )

    def serving_endpoints(self) -> list[str]:
        """Names of the region's endpoints that serve or will serve (not being deleted)."""
        names: list[str] = []
        for page in self._sm.get_paginator("list_endpoints").paginate():
            names.extend(
                e["EndpointName"]
                for e in page.get("Endpoints", [])
                if e.get("EndpointStatus") not in ("Deleting", "Failed")
            )
        return names

    def model_names(self) -> list[str]:
        """Every model of the region (ListModels, paginated)."""
        return [
            str(m["ModelName"])
            for page in self._sm.get_paginator("list_models").paginate()
            for m in page.get("Models", [])
        ]

    def notebook_names(self) -> list[str]:
        return [
            str(n["NotebookInstanceName"])
            for page in self._sm.get_paginator("list_notebook_instances").paginate()
            for n in page.get("NotebookInstances", [])
        ]
