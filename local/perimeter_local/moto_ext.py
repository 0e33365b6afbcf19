"""What the embedded AWS adds to moto, for the local runner only (never the Lambda code).

moto 5.2.5 lacks four things the samples in ``events/`` need (FACTS.md):

- the DescribeSecurityGroups filter ``ip-permission.prefix-list-id`` (AWS implements it; moto
  raises NotImplementedError, an HTTP 500). SgGuard keeps using it on ModifyManagedPrefixList:
  on AWS it is one paginated call for every group naming the list. The extension gives moto the
  filter's AWS meaning: a group matches when one of its ingress rules names one of the lists.
- Bedrock guardrails, Marketplace model endpoints and Custom Model Import. The **stand-in**
  serves those calls from a small store kept on moto's Bedrock backend (so moto's reset empties
  it with the rest of the account), shaped by botocore's Bedrock model: every request is parsed
  and every answer validated against the operation's output shape, so a wrong shape fails
  loudly instead of passing. It is not Bedrock: an import job completes at once, a Marketplace
  endpoint is ``InService`` at once, and of a guardrail's policies it keeps what the call sent.

- SageMaker's UpdateDomain (moto creates, describes and deletes domains, but cannot change
  one). The extension applies the call's settings to moto's own domain, so DescribeDomain reads
  back what the call left, and validates its answer against botocore's SageMaker model.

- Security Hub's BatchUpdateFindings (the undo's note on a finding). moto has no route for it,
  so the extension answers it on the client side, in this process only: the request is checked
  against botocore's Security Hub model, the Note and Workflow are applied to the finding moto
  stores (GetFindings reads them back), and the answer is checked against the output shape.

``moto_extensions()`` patches the in-process moto classes for as long as it is entered (the
``--embedded`` server is in-process, so it serves both; tests that need the filter enter it too)
and puts moto back as it was on leaving. The runner prints what was served by each
(``served()``), so no run passes a stand-in answer off as moto's or AWS's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import secrets
import string
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

#: Operation -> what the runner says moto lacks, in the order they were served this run.
_SERVED: dict[str, str] = {}
_MISSING = object()
#: How many callers are inside ``moto_extensions()``, and what the patches replaced.
_DEPTH: list[int] = [0]
_SAVED: list[tuple[Any, str, Any]] = []
_LOCK = threading.Lock()

PREFIX_LIST_FILTER = "the DescribeSecurityGroups filter ip-permission.prefix-list-id"


def served() -> dict[str, str]:
    """What the extensions served since the last ``forget_served()`` (operation -> kind)."""
    return dict(_SERVED)


def forget_served() -> None:
    _SERVED.clear()


@contextlib.contextmanager
def moto_extensions() -> Iterator[None]:
    """The extensions on moto's classes in this process while inside (re-entrant)."""
    with _LOCK:
        if _DEPTH[0] == 0:
            _prefix_list_filter()
            _bedrock_stand_in()
            _sagemaker_extension()
            _securityhub_extension()
        _DEPTH[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                for cls, name, old in reversed(_SAVED):
                    if old is _MISSING:
                        delattr(cls, name)
                    else:
                        setattr(cls, name, old)
                _SAVED.clear()


def _patch(cls: Any, name: str, func: Any) -> None:
    _SAVED.append((cls, name, cls.__dict__.get(name, _MISSING)))
    setattr(cls, name, func)


# --- EC2: DescribeSecurityGroups' (egress.)ip-permission.prefix-list-id ------------------------------


def _prefix_list_filter() -> None:
    from moto.ec2.models.security_groups import SecurityGroup

    original = SecurityGroup.matches_filter

    def matches_filter(self: Any, key: str, filter_value: Any) -> Any:
        if key == "ip-permission.prefix-list-id":
            _SERVED.setdefault("DescribeSecurityGroups(ip-permission.prefix-list-id)", "ec2")
            return any(rule.prefix_list_id in filter_value for rule in self.ingress_rules)
        if key == "egress.ip-permission.prefix-list-id":
            _SERVED.setdefault("DescribeSecurityGroups(egress.ip-permission.prefix-list-id)", "ec2")
            return any(rule.prefix_list_id in filter_value for rule in self.egress_rules)
        return original(self, key, filter_value)

    _patch(SecurityGroup, "matches_filter", matches_filter)


# --- Bedrock stand-in -------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _new_id(n: int = 12) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def _unconfig(value: Any) -> Any:
    """A guardrail policy as Create/UpdateGuardrail take it -> as GetGuardrail returns it
    (``contentPolicyConfig.filtersConfig`` -> ``contentPolicy.filters``...)."""
    if isinstance(value, Mapping):
        return {k.removesuffix("Config"): _unconfig(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unconfig(v) for v in value]
    return value


_POLICY_KEYS = (
    "topicPolicyConfig",
    "contentPolicyConfig",
    "wordPolicyConfig",
    "sensitiveInformationPolicyConfig",
    "contextualGroundingPolicyConfig",
)


class _Store:
    def __init__(self) -> None:
        self.guardrails: dict[str, dict[str, Any]] = {}  # id -> {"DRAFT": {...}, "1": {...}}
        self.endpoints: dict[str, dict[str, Any]] = {}  # arn -> endpoint
        self.jobs: dict[str, dict[str, Any]] = {}  # arn -> job
        self.models: dict[str, dict[str, Any]] = {}  # name -> model summary
        self.deployments: dict[str, dict[str, Any]] = {}  # arn -> custom model deployment
        self.enforced: dict[str, dict[str, Any]] = {}  # configId -> enforced configuration
        self.policies: dict[str, str] = {}  # resource arn -> resource policy document


def _not_found(what: str) -> Exception:
    from moto.bedrock.exceptions import ResourceNotFoundException

    return ResourceNotFoundException(f"{what} not found (embedded stand-in)")


@functools.cache
def _service_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _store(self: Any) -> _Store:
    backend = self.bedrock_backend
    if not hasattr(backend, "perimeter_stand_in"):
        backend.perimeter_stand_in = _Store()
    return backend.perimeter_stand_in  # type: ignore[no-any-return]


def _body(self: Any) -> dict[str, Any]:
    return dict(json.loads(self.body)) if self.body else {}


def _query(self: Any, name: str) -> str | None:
    values = self.querystring.get(name)
    return str(values[0]) if values else None


def _path(self: Any, name: str) -> str:
    return unquote(str(self.uri_match[name]))


def _answer(operation: str, result: dict[str, Any] | None, service: str = "bedrock") -> Any:
    """The stand-in's answer, checked against botocore's output shape for the operation."""
    from botocore.validate import ParamValidator
    from moto.core.responses import ActionResult, EmptyResult

    _SERVED.setdefault(operation, service)
    if result is None:
        return EmptyResult()
    report = ParamValidator().validate(
        result, _service_model(service).operation_model(operation).output_shape
    )
    if report.has_errors():
        raise AssertionError(f"the {service} stand-in's {operation} answer: {report.generate_report()}")
    return ActionResult(result)


def _guardrail_id(self: Any) -> str:
    ident = _path(self, "guardrailIdentifier")
    return ident.rsplit("/", 1)[-1] if ident.startswith("arn:") else ident


def create_guardrail(self: Any) -> Any:
    req, s = _body(self), _store(self)
    gid, now = _new_id(), _now()
    arn = f"arn:aws:bedrock:{self.region}:{self.current_account}:guardrail/{gid}"
    draft = {
        "name": req["name"],
        "guardrailId": gid,
        "guardrailArn": arn,
        "version": "DRAFT",
        "status": "READY",
        "createdAt": now,
        "updatedAt": now,
        "blockedInputMessaging": req["blockedInputMessaging"],
        "blockedOutputsMessaging": req["blockedOutputsMessaging"],
        **({"description": req["description"]} if req.get("description") else {}),
        **{k.removesuffix("Config"): _unconfig(req[k]) for k in _POLICY_KEYS if req.get(k)},
    }
    s.guardrails[gid] = {"DRAFT": draft}
    return _answer(
        "CreateGuardrail", {"guardrailId": gid, "guardrailArn": arn, "version": "DRAFT", "createdAt": now}
    )


def _versions(self: Any) -> dict[str, Any]:
    gid = _guardrail_id(self)
    versions = _store(self).guardrails.get(gid)
    if versions is None:
        raise _not_found(f"guardrail {gid}")
    return versions


def get_guardrail(self: Any) -> Any:
    versions = _versions(self)
    version = _query(self, "guardrailVersion") or "DRAFT"
    if version not in versions:
        raise _not_found(f"guardrail {_guardrail_id(self)} version {version}")
    return _answer("GetGuardrail", dict(versions[version]))


def list_guardrails(self: Any) -> Any:
    s, ident = _store(self), _query(self, "guardrailIdentifier")
    if ident:
        gid = ident.rsplit("/", 1)[-1]
        chosen = list(s.guardrails.get(gid, {}).values())
    else:  # without an identifier: the DRAFT of every guardrail
        chosen = [v["DRAFT"] for v in s.guardrails.values()]
    keys = ("name", "status", "version", "createdAt", "updatedAt")
    summaries = [
        {"id": g["guardrailId"], "arn": g["guardrailArn"], **{k: g[k] for k in keys}} for g in chosen
    ]
    return _answer("ListGuardrails", {"guardrails": summaries})


def update_guardrail(self: Any) -> Any:
    versions, req, now = _versions(self), _body(self), _now()
    draft = {
        k: v
        for k, v in versions["DRAFT"].items()
        if k in ("guardrailId", "guardrailArn", "version", "status", "createdAt")
    }
    draft.update(
        name=req["name"],
        updatedAt=now,
        blockedInputMessaging=req["blockedInputMessaging"],
        blockedOutputsMessaging=req["blockedOutputsMessaging"],
        **{k.removesuffix("Config"): _unconfig(req[k]) for k in _POLICY_KEYS if req.get(k)},
    )
    versions["DRAFT"] = draft
    return _answer(
        "UpdateGuardrail",
        {
            "guardrailId": draft["guardrailId"],
            "guardrailArn": draft["guardrailArn"],
            "version": "DRAFT",
            "updatedAt": now,
        },
    )


def create_guardrail_version(self: Any) -> Any:
    versions = _versions(self)
    number = str(1 + max((int(v) for v in versions if v.isdigit()), default=0))
    versions[number] = {**versions["DRAFT"], "version": number}
    return _answer("CreateGuardrailVersion", {"guardrailId": _guardrail_id(self), "version": number})


def delete_guardrail(self: Any) -> Any:
    versions, version = _versions(self), _query(self, "guardrailVersion")
    if version:
        versions.pop(version, None)
    else:
        del _store(self).guardrails[_guardrail_id(self)]
    return _answer("DeleteGuardrail", None)


def put_enforced_guardrail_configuration(self: Any) -> Any:
    """The account's enforced guardrail: a new configuration, or ``configId``'s replaced. The
    guardrail must exist at the version named (Bedrock validates it too)."""
    req, s, now = _body(self), _store(self), _now()
    conf = req["guardrailInferenceConfig"]
    ident = str(conf["guardrailIdentifier"])
    gid = ident.rsplit("/", 1)[-1] if ident.startswith("arn:") else ident
    version = str(conf["guardrailVersion"])
    if version not in s.guardrails.get(gid, {}):
        raise _not_found(f"guardrail {gid} version {version}")
    config_id = str(req.get("configId") or f"cfg-{_new_id(8)}")
    old = s.enforced.get(config_id)
    if req.get("configId") and old is None:
        raise _not_found(f"enforced guardrail configuration {config_id}")
    who = f"arn:aws:iam::{self.current_account}:root"
    s.enforced[config_id] = {
        "configId": config_id,
        "guardrailArn": s.guardrails[gid][version]["guardrailArn"],
        "guardrailId": gid,
        "guardrailVersion": version,
        "createdAt": old["createdAt"] if old else now,
        "createdBy": old["createdBy"] if old else who,
        "updatedAt": now,
        "updatedBy": who,
        "owner": "ACCOUNT",
        **{k: conf[k] for k in ("selectiveContentGuarding", "modelEnforcement") if conf.get(k)},
    }
    return _answer(
        "PutEnforcedGuardrailConfiguration", {"configId": config_id, "updatedAt": now, "updatedBy": who}
    )


def delete_enforced_guardrail_configuration(self: Any) -> Any:
    config_id = _path(self, "configId")
    if _store(self).enforced.pop(config_id, None) is None:
        raise _not_found(f"enforced guardrail configuration {config_id}")
    return _answer("DeleteEnforcedGuardrailConfiguration", None)


def list_enforced_guardrails_configuration(self: Any) -> Any:
    # the account's own configurations (a stand-in account belongs to no organization)
    configs = list(_store(self).enforced.values())
    return _answer("ListEnforcedGuardrailsConfiguration", {"guardrailsConfig": configs})


def _endpoint(self: Any, operation: str) -> Any:
    arn = _path(self, "endpointArn")
    endpoint = _store(self).endpoints.get(arn)
    if endpoint is None:
        raise _not_found(f"Marketplace model endpoint {arn}")
    return _answer(operation, {"marketplaceModelEndpoint": endpoint})


def create_marketplace_model_endpoint(self: Any) -> Any:
    req, now = _body(self), _now()
    arn = f"arn:aws:sagemaker:{self.region}:{self.current_account}:endpoint/{req['endpointName']}"
    _store(self).endpoints[arn] = {
        "endpointArn": arn,
        "modelSourceIdentifier": req["modelSourceIdentifier"],
        "status": "ACTIVE",
        "endpointStatus": "InService",
        "createdAt": now,
        "updatedAt": now,
        "endpointConfig": req["endpointConfig"],
    }
    made = {"marketplaceModelEndpoint": _store(self).endpoints[arn]}
    return _answer("CreateMarketplaceModelEndpoint", made)


def get_marketplace_model_endpoint(self: Any) -> Any:
    return _endpoint(self, "GetMarketplaceModelEndpoint")


def update_marketplace_model_endpoint(self: Any) -> Any:
    arn = _path(self, "endpointArn")
    endpoint = _store(self).endpoints.get(arn)
    if endpoint is not None:
        endpoint.update(endpointConfig=_body(self)["endpointConfig"], updatedAt=_now())
    return _endpoint(self, "UpdateMarketplaceModelEndpoint")


def delete_marketplace_model_endpoint(self: Any) -> Any:
    arn = _path(self, "endpointArn")
    if _store(self).endpoints.pop(arn, None) is None:
        raise _not_found(f"Marketplace model endpoint {arn}")
    return _answer("DeleteMarketplaceModelEndpoint", None)


def register_marketplace_model_endpoint(self: Any) -> Any:
    """Registers an existing SageMaker endpoint of this account (moto's) with Bedrock: the
    endpoint's configuration is what SageMaker holds (instance, role, the model's VPC)."""
    from moto.sagemaker.models import sagemaker_backends

    arn, now = _path(self, "endpointIdentifier"), _now()
    name = arn.rsplit("/", 1)[-1]
    sm = sagemaker_backends[self.current_account][self.region]
    endpoint = sm.endpoints.get(name)
    if endpoint is None:
        raise _not_found(f"SageMaker endpoint {arn}")
    variant = sm.endpoint_configs[endpoint.endpoint_config_name].production_variants[0]
    model = sm._models.get(variant["ModelName"])
    vpc = (model.vpc_config if model is not None else None) or {}
    sagemaker = {
        "initialInstanceCount": int(variant.get("InitialInstanceCount") or 1),
        "instanceType": str(variant.get("InstanceType") or "ml.g5.2xlarge"),
        "executionRole": model.execution_role_arn if model is not None else "",
        **(
            {"vpc": {"subnetIds": vpc["Subnets"], "securityGroupIds": vpc["SecurityGroupIds"]}}
            if vpc.get("Subnets")
            else {}
        ),
    }
    _store(self).endpoints[endpoint.arn] = {
        "endpointArn": endpoint.arn,
        "modelSourceIdentifier": _body(self)["modelSourceIdentifier"],
        "status": "ACTIVE",
        "endpointStatus": "InService",
        "createdAt": now,
        "updatedAt": now,
        "endpointConfig": {"sageMaker": sagemaker},
    }
    made = {"marketplaceModelEndpoint": _store(self).endpoints[endpoint.arn]}
    return _answer("RegisterMarketplaceModelEndpoint", made)


def list_marketplace_model_endpoints(self: Any) -> Any:
    keys = ("endpointArn", "modelSourceIdentifier", "status", "createdAt", "updatedAt")
    summaries = [{k: e[k] for k in keys} for e in _store(self).endpoints.values()]
    return _answer("ListMarketplaceModelEndpoints", {"marketplaceModelEndpoints": summaries})


def create_model_import_job(self: Any) -> Any:
    req, s, now = _body(self), _store(self), _now()
    base = f"arn:aws:bedrock:{self.region}:{self.current_account}"
    job_arn = f"{base}:model-import-job/{_new_id()}"
    model_arn = f"{base}:imported-model/{_new_id()}"
    s.jobs[job_arn] = {
        "jobArn": job_arn,
        "jobName": req["jobName"],
        "importedModelName": req["importedModelName"],
        "importedModelArn": model_arn,
        "roleArn": req["roleArn"],
        "modelDataSource": req["modelDataSource"],
        "status": "Completed",  # AWS takes minutes; the stand-in completes the job at once
        "creationTime": now,
        "endTime": now,
    }
    s.models[req["importedModelName"]] = {
        "modelArn": model_arn,
        "modelName": req["importedModelName"],
        "creationTime": now,
    }
    return _answer("CreateModelImportJob", {"jobArn": job_arn})


def get_model_import_job(self: Any) -> Any:
    ident = _path(self, "jobIdentifier")
    job = next((j for j in _store(self).jobs.values() if ident in (j["jobArn"], j["jobName"])), None)
    if job is None:
        raise _not_found(f"model import job {ident}")
    return _answer("GetModelImportJob", dict(job))


def list_imported_models(self: Any) -> Any:
    return _answer("ListImportedModels", {"modelSummaries": list(_store(self).models.values())})


def create_custom_model_deployment(self: Any) -> Any:
    """On-demand serving of a model the stand-in imported (AWS takes minutes: Active at once)."""
    req, s, now = _body(self), _store(self), _now()
    model_arn = str(req["modelArn"])
    if model_arn not in {m["modelArn"] for m in s.models.values()}:
        raise _not_found(f"model {model_arn}")
    arn = f"arn:aws:bedrock:{self.region}:{self.current_account}:custom-model-deployment/{_new_id()}"
    s.deployments[arn] = {
        "customModelDeploymentArn": arn,
        "customModelDeploymentName": req["modelDeploymentName"],
        "modelArn": model_arn,
        "createdAt": now,
        "status": "Active",
        "lastUpdatedAt": now,
    }
    return _answer("CreateCustomModelDeployment", {"customModelDeploymentArn": arn})


def list_custom_model_deployments(self: Any) -> Any:
    summaries = list(_store(self).deployments.values())
    return _answer("ListCustomModelDeployments", {"modelDeploymentSummaries": summaries})


def put_resource_policy(self: Any) -> Any:
    req = _body(self)
    _store(self).policies[str(req["resourceArn"])] = str(req["resourcePolicy"])
    return _answer("PutResourcePolicy", {"resourceArn": req["resourceArn"]})


def get_resource_policy(self: Any) -> Any:
    # Bedrock answers a resource without a policy with ResourceNotFoundException
    arn = _path(self, "resourceArn")
    policy = _store(self).policies.get(arn)
    if policy is None:
        raise _not_found(f"resource policy of {arn}")
    return _answer("GetResourcePolicy", {"resourcePolicy": policy})


def delete_resource_policy(self: Any) -> Any:
    arn = _path(self, "resourceArn")
    if _store(self).policies.pop(arn, None) is None:
        raise _not_found(f"resource policy of {arn}")
    return _answer("DeleteResourcePolicy", None)


_OPERATIONS: dict[str, Callable[..., Any]] = {
    "create_guardrail": create_guardrail,
    "get_guardrail": get_guardrail,
    "list_guardrails": list_guardrails,
    "update_guardrail": update_guardrail,
    "create_guardrail_version": create_guardrail_version,
    "delete_guardrail": delete_guardrail,
    "put_enforced_guardrail_configuration": put_enforced_guardrail_configuration,
    "delete_enforced_guardrail_configuration": delete_enforced_guardrail_configuration,
    "list_enforced_guardrails_configuration": list_enforced_guardrails_configuration,
    "register_marketplace_model_endpoint": register_marketplace_model_endpoint,
    "create_marketplace_model_endpoint": create_marketplace_model_endpoint,
    "get_marketplace_model_endpoint": get_marketplace_model_endpoint,
    "update_marketplace_model_endpoint": update_marketplace_model_endpoint,
    "delete_marketplace_model_endpoint": delete_marketplace_model_endpoint,
    "list_marketplace_model_endpoints": list_marketplace_model_endpoints,
    "create_model_import_job": create_model_import_job,
    "get_model_import_job": get_model_import_job,
    "list_imported_models": list_imported_models,
    "create_custom_model_deployment": create_custom_model_deployment,
    "list_custom_model_deployments": list_custom_model_deployments,
    "put_resource_policy": put_resource_policy,
    "get_resource_policy": get_resource_policy,
    "delete_resource_policy": delete_resource_policy,
}


# --- SageMaker: UpdateDomain ------------------------------------------------------------------


def update_domain(self: Any) -> Any:
    """UpdateDomain on moto's own domain: the settings the call sends replace the domain's
    (``DefaultUserSettings`` merged key by key, as AWS merges them)."""
    domain_id = self._get_param("DomainId")
    domain = self.sagemaker_backend.domains.get(domain_id)
    if domain is None:
        from moto.sagemaker.exceptions import ValidationError

        raise ValidationError(message=f"Could not find domain '{domain_id}'.")
    if self._get_param("DefaultUserSettings"):
        domain.default_user_settings = {
            **(domain.default_user_settings or {}),
            **self._get_param("DefaultUserSettings"),
        }
    for param, attr in (
        ("AppNetworkAccessType", "app_network_access_type"),
        ("SubnetIds", "subnet_ids"),
        ("AppSecurityGroupManagement", "app_security_group_management"),
        ("DefaultSpaceSettings", "default_space_settings"),
    ):
        if self._get_param(param) is not None:
            setattr(domain, attr, self._get_param(param))
    domain.last_modified_time = _now()
    return _answer("UpdateDomain", {"DomainArn": domain.arn}, service="sagemaker")


_SAGEMAKER_OPERATIONS: dict[str, Callable[..., Any]] = {"update_domain": update_domain}


def _sagemaker_extension() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    for name, func in _SAGEMAKER_OPERATIONS.items():
        if getattr(SageMakerResponse, name, None) is not None:
            raise RuntimeError(f"moto now implements sagemaker {name}: drop it from the extension")
        _patch(SageMakerResponse, name, func)


def _bedrock_stand_in() -> None:
    from moto.bedrock.responses import BedrockResponse

    for name, func in _OPERATIONS.items():
        current = getattr(BedrockResponse, name, None)
        # moto_gaps.py's always-on empty listing is ours: the stand-in serves over it while entered
        if current is not None and not getattr(current, "perimeter_gap", False):
            raise RuntimeError(f"moto now implements bedrock {name}: drop it from the stand-in")
        _patch(BedrockResponse, name, func)


# --- Security Hub: BatchUpdateFindings ---------------------------------------------------------


def batch_update_findings(region: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """BatchUpdateFindings on the findings moto stores (Note, Workflow, UpdatedAt)."""
    from botocore.validate import ParamValidator
    from moto.securityhub.models import securityhub_backends

    op = _service_model("securityhub").operation_model("BatchUpdateFindings")
    report = ParamValidator().validate(dict(params), op.input_shape)
    if report.has_errors():
        raise ValueError(f"BatchUpdateFindings: {report.generate_report()}")
    now = _now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    stored = {
        f.id: f
        for account in list(securityhub_backends)
        for f in securityhub_backends[account][region].findings
    }
    done, failed = [], []
    for ident in params["FindingIdentifiers"]:
        finding = stored.get(ident["Id"])
        if finding is None:
            failed.append(
                {"FindingIdentifier": ident, "ErrorCode": "FindingNotFound", "ErrorMessage": "not found"}
            )
            continue
        if "Note" in params:
            finding.data["Note"] = {**params["Note"], "UpdatedAt": now}
        if "Workflow" in params:
            finding.data["Workflow"] = dict(params["Workflow"])
        finding.data["UpdatedAt"] = now
        done.append(ident)
    result = {"ProcessedFindings": done, "UnprocessedFindings": failed}
    _SERVED.setdefault("BatchUpdateFindings", "securityhub")
    report = ParamValidator().validate(result, op.output_shape)
    if report.has_errors():
        raise AssertionError(f"the securityhub extension's answer: {report.generate_report()}")
    return result


def _securityhub_extension() -> None:
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    @functools.wraps(original)
    def make_api_call(client: Any, operation: str, params: Any) -> Any:
        if operation == "BatchUpdateFindings" and client.meta.service_model.service_name == "securityhub":
            return batch_update_findings(client.meta.region_name, params)
        return original(client, operation, params)

    _patch(BaseClient, "_make_api_call", make_api_call)


def describe(served_now: Mapping[str, str]) -> list[str]:
    """One line per extension used, for stderr: what was served and that moto lacks it."""
    lines = []
    bedrock = [op for op, kind in served_now.items() if kind == "bedrock"]
    if bedrock:
        lines.append(f"bedrock: embedded stand-in, moto lacks {', '.join(bedrock)}")
    sagemaker = [op for op, kind in served_now.items() if kind == "sagemaker"]
    if sagemaker:
        lines.append(f"sagemaker: embedded extension, moto lacks {', '.join(sagemaker)}")
    if any(kind == "securityhub" for kind in served_now.values()):
        lines.append("securityhub: embedded extension, moto lacks BatchUpdateFindings")
    if any(kind == "ec2" for kind in served_now.values()):
        lines.append(f"ec2: embedded extension, moto lacks {PREFIX_LIST_FILTER}")
    return lines
