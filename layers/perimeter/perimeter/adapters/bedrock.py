"""Bedrock adapter: guardrails, enforced guardrail configurations, Marketplace endpoints and
imported models.

moto has none of these (FACTS.md), so its tests use botocore's Stubber with responses shaped
from the Bedrock API reference; the adapter stays plain boto3 so it works against real AWS.
A guardrail or endpoint that no longer exists is ``None`` (``ResourceNotFoundException``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from perimeter.adapters.ec2 import error_code
from perimeter.model_posture.guardrails import Enforcement, Guardrail, guardrail_from_api

GONE = {"ResourceNotFoundException"}
#: Guardrails read per event at most: an account has few; a runaway one must not stall the event.
MAX_GUARDRAILS = 50


@dataclass(frozen=True, slots=True)
class MarketplaceEndpoint:
    arn: str
    name: str
    model_source: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    execution_role: str | None


class BedrockAdapter:
    def __init__(self, client: Any) -> None:
        self._br = client

    def guardrail(self, identifier: str, version: str | None = None) -> Guardrail | None:
        kwargs = {"guardrailIdentifier": identifier}
        if version:
            kwargs["guardrailVersion"] = version
        try:
            return guardrail_from_api(self._br.get_guardrail(**kwargs))
        except ClientError as exc:
            if error_code(exc) in GONE:
                return None
            raise

    def latest_version(self, identifier: str) -> str | None:
        """The highest published version number of a guardrail (None: only a DRAFT)."""
        versions: list[int] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"guardrailIdentifier": identifier}
            if token:
                kwargs["nextToken"] = token
            try:
                resp = self._br.list_guardrails(**kwargs)
            except ClientError as exc:
                if error_code(exc) in GONE:
                    return None
                raise
            versions.extend(
                int(g["version"]) for g in resp.get("guardrails", []) if str(g.get("version")).isdigit()
            )
            token = resp.get("nextToken")
            if not token:
                break
        return str(max(versions)) if versions else None

    def guardrails(self) -> list[Guardrail]:
        """Every guardrail's DRAFT (what ListGuardrails returns without an identifier), read in full."""
        ids: list[str] = []
        token = None
        while len(ids) < MAX_GUARDRAILS:
            resp = self._br.list_guardrails(**({"nextToken": token} if token else {}))
            ids.extend(str(g["id"]) for g in resp.get("guardrails", []))
            token = resp.get("nextToken")
            if not token:
                break
        out = []
        for gid in list(dict.fromkeys(ids))[:MAX_GUARDRAILS]:
            g = self.guardrail(gid)
            if g is not None:
                out.append(g)
        return out

    def enforced(self) -> list[Enforcement]:
        out: list[Enforcement] = []
        token = None
        while True:
            resp = self._br.list_enforced_guardrails_configuration(**({"nextToken": token} if token else {}))
            for c in resp.get("guardrailsConfig", []):
                out.append(
                    Enforcement(
                        guardrail_id=str(c.get("guardrailId", "")),
                        version=str(c.get("guardrailVersion", "")),
                        owner=str(c.get("owner", "ACCOUNT")),
                        config_id=str(c.get("configId", "")),
                    )
                )
            token = resp.get("nextToken")
            if not token:
                return out

    def served_models(self) -> list[str]:
        """Names of models Bedrock serves from this account: Marketplace endpoints, imported models,
        custom model deployments."""
        names: list[str] = []
        resp = self._br.list_marketplace_model_endpoints(maxResults=10)
        names.extend(
            f"Marketplace endpoint {e.get('endpointArn', '').rsplit('/', 1)[-1]}"
            for e in resp.get("marketplaceModelEndpoints", [])
        )
        resp = self._br.list_imported_models(maxResults=10)
        names.extend(f"imported model {m.get('modelName')}" for m in resp.get("modelSummaries", []))
        # Custom Model Import served on demand (CreateCustomModelDeployment)
        resp = self._br.list_custom_model_deployments(maxResults=10)
        names.extend(
            f"custom model deployment {d.get('customModelDeploymentName')}"
            for d in resp.get("modelDeploymentSummaries", [])
            if str(d.get("status", "")).upper() != "FAILED"
        )
        return names

    def marketplace_endpoint_arns(self) -> list[str]:
        """Every Marketplace endpoint of the region (ListMarketplaceModelEndpoints, paginated)."""
        arns: list[str] = []
        token = None
        while True:
            resp = self._br.list_marketplace_model_endpoints(**({"nextToken": token} if token else {}))
            arns.extend(str(e["endpointArn"]) for e in resp.get("marketplaceModelEndpoints", []))
            token = resp.get("nextToken")
            if not token:
                return arns

    def resource_policy(self, arn: str) -> dict[str, Any]:
        """The resource's policy as Bedrock holds it now; ``{}`` when it has none or the resource
        is gone (Bedrock answers both with ResourceNotFoundException): nothing grants anyone."""
        import json

        try:
            text = self._br.get_resource_policy(resourceArn=arn).get("resourcePolicy")
        except ClientError as exc:
            if error_code(exc) in GONE:
                return {}
            raise
        if not text:
            return {}
        doc = json.loads(text) if isinstance(text, str) else text
        return doc if isinstance(doc, dict) else {}

    def marketplace_endpoint(self, arn: str) -> MarketplaceEndpoint | None:
        try:
            e = self._br.get_marketplace_model_endpoint(endpointArn=arn)["marketplaceModelEndpoint"]
        except ClientError as exc:
            if error_code(exc) in GONE:
                return None
            raise
        return marketplace_from_config(
            e.get("endpointArn", arn), e.get("modelSourceIdentifier", ""), e.get("endpointConfig") or {}
        )


def marketplace_from_config(arn: str, model_source: str, config: Any) -> MarketplaceEndpoint:
    sm = (config or {}).get("sageMaker") or {}
    vpc = sm.get("vpc") or {}
    return MarketplaceEndpoint(
        arn=arn,
        name=arn.rsplit("/", 1)[-1],
        model_source=model_source,
        subnets=tuple(vpc.get("subnetIds") or ()),
        security_groups=tuple(vpc.get("securityGroupIds") or ()),
        execution_role=sm.get("executionRole"),
    )
