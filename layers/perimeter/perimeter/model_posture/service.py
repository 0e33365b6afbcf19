"""The model-deployment event path (SageMaker and Bedrock): follow, judge, then act once.

SageMaker events are followed to what serves traffic: an endpoint to its endpoint config, the
config to its models, each model to its subnets, VPCs and security groups. Bedrock events
bring the Marketplace endpoint's VPC configuration and the account's guardrails. Each
resource is judged by the posture controls (PER-VPC-1/2, PER-TIER-1, PER-FL-1, PER-GR-1) and
the model's security groups by the core's SG controls with model-tier weight. As in
``security_groups.service``, a compliant event makes no write; otherwise ``posture.act`` acts (creates
the missing flow log in ``enforce``) and reports once per CloudTrail event id.

Security-group rules are not revoked here: rule changes are SgGuard's (it sees every
Authorize call); this path reports the standing rules of the groups a model actually uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from perimeter.core.arns import arn as arn_of
from perimeter.core.arns import marketplace_endpoint_arn
from perimeter.core.events import ApiCall, MalformedEvent, unwrap
from perimeter.core.guard import admit
from perimeter.core.report import Outcome, build_finding, iso_now
from perimeter.core.runtime import Runtime
from perimeter.core.telemetry import logger
from perimeter.model_posture.evaluate import (
    ModelFacts,
    SharedUse,
    marketplace_outside_vpc,
    marketplace_resource,
    model_outside_vpc,
    model_resource,
    model_without_isolation,
    notebook_issues,
    notebook_resource,
    shared_group,
    vpc_without_runtime_endpoint,
    vpcs_of,
)
from perimeter.policy import Policy
from perimeter.posture.act import (
    act_and_report,
    flow_log_evaluation,
    plan_report,
    resume_in_stage,
    unreported_flow_log,
    vpc_resource,
)
from perimeter.posture.controls import Evaluation, Issue, Judged, arn_resource
from perimeter.security_groups.changes import GroupChange
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.evaluate import GroupDecision, decide

SAGEMAKER_EVENTS = frozenset(
    {
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
        "UpdateEndpoint",
        "CreateNotebookInstance",
        "UpdateNotebookInstance",
        # The calls that end a problem: reads and Security Hub updates only.
        "DeleteModel",
        "DeleteEndpoint",
        "DeleteNotebookInstance",
        # Studio domains (issue 9 A): AppNetworkAccessType; the delete resolves.
        "CreateDomain",
        "UpdateDomain",
        "DeleteDomain",
    }
)
MARKETPLACE_EVENTS = frozenset(
    # Register: an existing SageMaker endpoint becomes a Bedrock Marketplace endpoint.
    {"CreateMarketplaceModelEndpoint", "UpdateMarketplaceModelEndpoint", "RegisterMarketplaceModelEndpoint"}
)
GUARDRAIL_EVENTS = frozenset(
    {"CreateGuardrail", "UpdateGuardrail", "DeleteGuardrail", "CreateGuardrailVersion"}
)
#: Account-level enforced guardrail configurations (PER-GR-1: applied to every invocation).
ENFORCEMENT_EVENTS = frozenset({"PutEnforcedGuardrailConfiguration", "DeleteEnforcedGuardrailConfiguration"})
#: Resource policies on Bedrock resources (custom models, guardrails): PER-IAM-1.
RESOURCE_POLICY_EVENTS = frozenset({"PutResourcePolicy", "DeleteResourcePolicy"})
#: Models Bedrock serves from an import: they need the prompt-attack guardrail (PER-GR-1).
SERVING_EVENTS = frozenset({"CreateModelImportJob", "CreateCustomModelDeployment"})
BEDROCK_EVENTS = (
    MARKETPLACE_EVENTS
    | GUARDRAIL_EVENTS
    | ENFORCEMENT_EVENTS
    | RESOURCE_POLICY_EVENTS
    | SERVING_EVENTS
    | {"DeleteMarketplaceModelEndpoint"}
)
#: Events that never write (no flow log is created on them): they report the state only.
READ_ONLY_EVENTS = frozenset(
    {
        "DeleteModel",
        "DeleteEndpoint",
        "DeleteNotebookInstance",
        "DeleteMarketplaceModelEndpoint",
        "DeleteResourcePolicy",
        "DeleteDomain",
    }
)
DATA_ENI_MARKERS = ("RDSNetworkInterface", "ElastiCache", "Redshift", "DocumentDB")


def _obj(value: Any) -> Mapping[str, Any]:
    """An object of the record where one is expected only for a label: anything else (absent,
    a list, a text) labels nothing."""
    return value if isinstance(value, Mapping) else {}


def _req(mapping: Mapping[str, Any], name: str) -> Any:
    """CloudTrail writes SageMaker and Bedrock parameters in lower camel case; replays and
    hand-made samples sometimes use the API's casing."""
    if name in mapping:
        return mapping[name]
    upper = name[0].upper() + name[1:]
    return mapping.get(upper)


@dataclass
class Gathered:
    issues: list[Issue] = field(default_factory=list)
    sg_decisions: list[GroupDecision] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    judged: list[str] = field(default_factory=list)
    #: VPC id -> chain that led to it, for PER-FL-1
    vpcs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: security group id -> chain that led to it
    group_chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    #: every (control, resource) judged on its whole state (clean ones resolve their finding)
    covered: Evaluation = field(default_factory=Evaluation)

    def cover(self, control_id: str, resource: Any, why: str) -> None:
        self.covered.cover(control_id, resource, why)


def handle(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Handle one EventBridge event carrying a SageMaker or Bedrock API call."""
    call, ignored = admit(event, rt.settings)
    if ignored:
        return ignored
    g = Gathered()
    if call.event_name in SAGEMAKER_EVENTS:
        _gather_sagemaker(call, rt, g)
    elif call.event_name in BEDROCK_EVENTS:
        _gather_bedrock(call, rt, g)
    else:
        return {
            "status": "ignored",
            "reason": f"{call.event_name} is not a model event",
            "event_id": call.event_id,
        }
    ev = Evaluation(list(g.issues), list(g.covered.covered))
    if g.vpcs:
        ev.extend(
            flow_log_evaluation(call, rt, list(g.vpcs), chains=g.vpcs, why="A model is deployed into it.")
        )
    judged, resolved, existing = plan_report(call, ev, rt)
    violating = [d for d in g.sg_decisions if d.violations]
    base = {"event_id": call.event_id, "event_name": call.event_name, "resources": g.judged, **g.notes}
    if not judged and not violating and not resolved:
        status = "resource-gone" if g.gone and not g.judged else "compliant"
        logger.info("no violation", extra={"status": status, "resources": g.judged, "gone": g.gone})
        return {"status": status, **base, "gone": g.gone}

    # An earlier attempt may have created a flow log and died after writing its report to the
    # outbox: the VPC now reads clean beside the model's other issues, and that report (the
    # flow log's with them) is the one to send.
    resumable = unreported_flow_log(call, ev, rt, existing)

    def stage() -> dict[str, Any]:
        resumed = resume_in_stage(call, rt) if resumable else None
        if resumed is not None:
            return resumed
        return _act(call, judged, violating, rt, base, g.group_chains, resolved=resolved, existing=existing)

    return rt.run_once(call.event_id, stage, context)


def _act(
    call: ApiCall,
    judged: list[Judged],
    decisions: list[GroupDecision],
    rt: Runtime,
    base: dict[str, Any],
    chains: dict[str, tuple[str, ...]],
    *,
    resolved: list[tuple[dict[str, Any], str]],
    existing: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    now = iso_now()
    sg_findings = []
    sg_told = []
    for d in decisions:
        outcome = Outcome(d)
        for control_id, vs in d.by_control().items():
            finding = build_finding(call, control_id, vs, outcome, now=now)
            sg_findings.append(finding)
            top = max(vs, key=lambda v: v.score.value)
            sg_told.append(
                Judged(
                    issue=Issue(
                        control_id=control_id,
                        resource=arn_resource("AwsEc2SecurityGroup", d.ctx.arn, d.ctx.group_id),
                        score=top.score.value,
                        reasons=top.score.reasons,
                        summary=f"{d.ctx.group_id} serves a model and allows "
                        + "; ".join(v.rule.describe() for v in vs),
                        chain=(*chains.get(d.ctx.group_id, ()), d.ctx.group_id),
                        fix=vs[0].control.remediation,
                    ),
                    mode=top.mode,
                    severity=finding["Severity"]["Label"],
                    action="exempt" if all(v.exemption for v in vs) else "detected",
                )
            )
    return act_and_report(
        call,
        judged,
        rt,
        extra_findings=sg_findings,
        also_notify=sg_told,
        extra=base,
        resolved=resolved,
        existing=existing,
        may_create=call.event_name not in READ_ONLY_EVENTS,
    )


# --- SageMaker --------------------------------------------------------------------------


def _sagemaker(rt: Runtime) -> Any:
    from perimeter.adapters.sagemaker import SageMakerAdapter

    return SageMakerAdapter(rt.client("sagemaker"))


def _gather_sagemaker(call: ApiCall, rt: Runtime, g: Gathered) -> None:
    sm = _sagemaker(rt)
    if call.event_name in ("CreateNotebookInstance", "UpdateNotebookInstance", "DeleteNotebookInstance"):
        _gather_notebook(call, rt, g, sm)
        return
    if call.event_name == "DeleteEndpoint":
        _gather_deleted_endpoint(call, rt, g, sm)
        return
    if call.event_name in ("CreateDomain", "UpdateDomain", "DeleteDomain"):
        _gather_domain(call, rt, g, sm)
        return
    if call.event_name in ("CreateModel", "DeleteModel"):
        models: list[tuple[tuple[str, ...], str]] = [((), str(_req(call.request, "modelName")))]
    else:
        found = _endpoint_models(call, rt, g, sm)
        if found is None:
            return
        models = found
    facts: list[tuple[tuple[str, ...], ModelFacts]] = []
    for prefix, name in models:
        m = sm.model(name)
        if m is None:
            g.gone.append(f"model {name}")
            arn = arn_of("sagemaker", call.region, call.account, f"model/{name.lower()}")
            for control in ("PER-VPC-1", "PER-VPC-2"):
                g.cover(control, model_resource(arn, name), f"model {name} was deleted.")
            continue
        iso = _req(call.request, "enableNetworkIsolation") if call.event_name == "CreateModel" else None
        if isinstance(iso, bool):
            # Immutable after CreateModel: the record states what was created (and moto reads it back wrong).
            m = replace(m, network_isolation=iso)
        facts.append(((*prefix, f"model {name}"), m))
        g.judged.append(f"model {name}")
    _judge_models(call, rt, g, facts, kind="sagemaker")
    served = g.notes.pop("guardrail_served", None)
    if served and facts:
        _guardrail_requirement(call, rt, g, served, chain=facts[0][0])


def _gather_domain(call: ApiCall, rt: Runtime, g: Gathered, sm: Any) -> None:
    """A Studio domain judged on what SageMaker holds now (DescribeDomain): PER-VPC-1 while its
    apps have direct internet access."""
    from perimeter.model_posture.evaluate import domain_issue, domain_resource

    resp = call.response or {}
    domain_id = _req(call.request, "domainId") or _req(resp, "domainId")
    arn = _req(resp, "domainArn")
    if not domain_id and arn:
        domain_id = str(arn).rsplit("/", 1)[-1]
    if not domain_id:
        raise MalformedEvent(f"{call.event_name}: record names no domain (domainId / domainArn)")
    domain_id = str(domain_id)
    arn = str(arn or arn_of("sagemaker", call.region, call.account, f"domain/{domain_id}"))
    d = sm.domain(domain_id)
    if d is None or str(d.get("Status", "")).startswith("Delet"):
        g.gone.append(f"domain {domain_id}")
        g.cover("PER-VPC-1", domain_resource(arn, domain_id), f"domain {domain_id} was deleted.")
        return
    name = str(d.get("DomainName") or _req(call.request, "domainName") or "")
    arn = str(d.get("DomainArn") or arn)
    access = str(d.get("AppNetworkAccessType") or "PublicInternetOnly")
    g.judged.append(f"domain {name or domain_id}")
    issue = domain_issue(arn, domain_id, name, access, (f"domain {name or domain_id}",))
    if issue:
        g.issues.append(issue)
    else:
        g.cover(
            "PER-VPC-1",
            domain_resource(arn, domain_id, name),
            f"domain {name or domain_id} has AppNetworkAccessType {access}.",
        )


def _endpoint_models(
    call: ApiCall, rt: Runtime, g: Gathered, sm: Any
) -> list[tuple[tuple[str, ...], str]] | None:
    """Endpoint (or config) -> its config -> model names, each with the chain that led there."""
    req = call.request
    prefix: tuple[str, ...] = ()
    config = _req(req, "endpointConfigName")
    if call.event_name in ("CreateEndpoint", "UpdateEndpoint"):
        endpoint = str(_req(req, "endpointName"))
        config = config or sm.endpoint_config_name(endpoint)
        prefix = (f"endpoint {endpoint}",)
        if "sagemaker" in rt.policy.guardrails.required_for:
            g.notes["guardrail_served"] = [f"SageMaker endpoint {endpoint}"]
    if not config:
        g.gone.append("endpoint config (unknown name)")
        return None
    found = sm.endpoint_config_models(str(config))
    if found is None:
        g.gone.append(f"endpoint config {config}")
        return None
    prefix = (*prefix, f"endpoint config {config}")
    return [(prefix, m) for m in found[1]]


def _gather_notebook(call: ApiCall, rt: Runtime, g: Gathered, sm: Any) -> None:
    _judge_notebook(call, rt, g, sm, str(_req(call.request, "notebookInstanceName")))


def _judge_notebook(call: ApiCall, rt: Runtime, g: Gathered, sm: Any, name: str) -> None:
    nb = sm.notebook(name)
    if nb is None or nb.status == "Deleting":
        g.gone.append(f"notebook {name}")
        arn = (
            nb.arn
            if nb
            else arn_of("sagemaker", call.region, call.account, f"notebook-instance/{name.lower()}")
        )
        g.cover("PER-VPC-1", notebook_resource(arn, name), f"notebook instance {name} was deleted.")
        return
    g.judged.append(f"notebook {name}")
    chain = (f"notebook {name}",)
    g.notes.setdefault("notebook_groups", []).extend(nb.security_groups)
    g.issues.extend(notebook_issues(nb, chain))
    g.cover(
        "PER-VPC-1",
        notebook_resource(nb.arn, nb.name),
        f"notebook instance {name} runs in subnet {nb.subnet} without direct internet access.",
    )
    if nb.subnet:
        for vpc in vpcs_of([nb.subnet], rt.network.subnet_vpcs([nb.subnet])):
            g.vpcs.setdefault(vpc, chain)


def _judge_models(
    call: ApiCall, rt: Runtime, g: Gathered, facts: list[tuple[tuple[str, ...], ModelFacts]], *, kind: str
) -> None:
    """PER-VPC-1/2, PER-TIER-1, the SG controls and (via ``g.vpcs``) PER-FL-1 for each model."""
    net = rt.network
    subnets = [s for _, m in facts for s in m.subnets]
    subnet_vpcs = net.subnet_vpcs(subnets) if subnets else {}
    group_chains: dict[str, tuple[str, ...]] = {}
    group_vpc: dict[str, str | None] = {}
    endpoint_cache: dict[str, set[str]] = {}
    for chain, m in facts:
        for issue in (
            model_outside_vpc(m, chain),
            model_without_isolation(m, chain) if kind == "sagemaker" else None,
        ):
            if issue:
                g.issues.append(issue)
        if kind == "sagemaker":
            res = model_resource(m.arn, m.name)
            g.cover("PER-VPC-1", res, f"model {m.name} runs in VPC subnets {', '.join(m.subnets)}.")
            g.cover("PER-VPC-2", res, f"model {m.name} has network isolation on.")
        if not m.in_vpc:
            continue
        for vpc in vpcs_of(m.subnets, subnet_vpcs):
            g.vpcs.setdefault(vpc, chain)
            if vpc not in endpoint_cache:
                endpoint_cache[vpc] = net.endpoint_services(vpc)
                issue = vpc_without_runtime_endpoint(
                    vpc, endpoint_cache[vpc], kind=kind, account=call.account, region=call.region, chain=chain
                )
                if issue:
                    g.issues.append(issue)
                else:
                    g.cover(
                        "PER-VPC-2", vpc_resource(call, vpc), f"VPC {vpc} has the runtime interface endpoint."
                    )
        for sg in m.security_groups:
            group_chains.setdefault(sg, chain)
            group_vpc.setdefault(sg, next(iter(vpcs_of(m.subnets, subnet_vpcs)), None))
    if group_chains:
        _judge_groups(call, rt, g, group_chains, group_vpc)


def as_model_tier(ctx: GroupContext, policy: Policy) -> GroupContext:
    """A group that serves a model is judged as the model tier, whatever its tag says (the
    sweep judges such groups the same way)."""
    if ctx.tier(policy) == "model":
        return ctx
    model_value = sorted(policy.tiers.values["model"])[0]
    return replace(ctx, tags={**ctx.tags, policy.tiers.tag_key: model_value})


def _judge_groups(
    call: ApiCall,
    rt: Runtime,
    g: Gathered,
    chains: dict[str, tuple[str, ...]],
    group_vpc: dict[str, str | None],
) -> None:
    policy = rt.policy
    net = rt.network
    contexts: dict[str, GroupContext] = {}
    for sg in chains:
        ctx = rt.ec2.group_context(sg, account=call.account, region=call.region)
        if not ctx.exists:
            g.gone.append(f"security group {sg}")
            continue
        contexts[sg] = ctx
    enis = net.enis_in_groups(contexts)
    others = {o for e in enis for o in e.group_ids if o not in contexts}
    other_tags = {gid: info.tags for gid, info in net.groups(others).items()}
    g.group_chains.update(chains)
    for sg, ctx in contexts.items():
        tier = ctx.tier(policy)
        shared = []
        data = []
        for e in enis:
            if sg not in e.group_ids:
                continue
            for o in e.group_ids:
                o_tier = (
                    policy.tiers.tier_of(other_tags.get(o, {}))
                    if o not in contexts
                    else contexts[o].tier(policy)
                )
                if o != sg and o_tier and o_tier != "model":
                    shared.append((e.eni_id, o, o_tier))
            if any(marker in e.description for marker in DATA_ENI_MARKERS):
                data.append((e.eni_id, e.description[:60]))
        use = SharedUse(sg, tier, tuple(shared), tuple(data), dict(ctx.tags))
        issue = shared_group(
            use, account=call.account, region=call.region, vpc_id=ctx.vpc_id, chain=chains[sg]
        )
        if issue:
            g.issues.append(issue)
        else:
            g.cover(
                "PER-TIER-1",
                arn_resource("AwsEc2SecurityGroup", ctx.arn, sg, {"GroupId": sg}),
                f"security group {sg} serves the model tier only.",
            )
        decision = decide(
            GroupChange(sg, (), whole_group=True),
            as_model_tier(ctx, policy),
            policy,
            principal_arn=call.actor.arn,
        )
        g.sg_decisions.append(decision)


def sweep_models(call: ApiCall, rt: Runtime) -> Gathered:
    """The sweep's way in: every SageMaker model and notebook of the region, judged by the
    same code as their events (SageMaker has no batch describe: one DescribeModel each).
    ``group_chains`` names the groups that serve a model; ``sg_decisions`` are left to the
    sweep's own pass over every group (one finding per group and control)."""
    g = Gathered()
    if all(rt.policy.mode(c) == "off" for c in ("PER-VPC-1", "PER-VPC-2", "PER-TIER-1")):
        return g
    sm = _sagemaker(rt)
    facts: list[tuple[tuple[str, ...], ModelFacts]] = []
    for name in sm.model_names():
        m = sm.model(name)
        if m is not None:
            facts.append(((f"model {name}",), m))
            g.judged.append(f"model {name}")
    if facts:
        _judge_models(call, rt, g, facts, kind="sagemaker")
    for name in sm.notebook_names():
        _judge_notebook(call, rt, g, sm, name)
    g.sg_decisions.clear()
    return g


# --- Bedrock ----------------------------------------------------------------------------


def _bedrock(rt: Runtime) -> Any:
    from perimeter.adapters.bedrock import BedrockAdapter

    return BedrockAdapter(rt.client("bedrock"))


def _gather_bedrock(call: ApiCall, rt: Runtime, g: Gathered) -> None:
    from perimeter.adapters.bedrock import marketplace_from_config

    br = _bedrock(rt)
    req = unwrap(call.request)
    if call.event_name == "DeleteMarketplaceModelEndpoint":
        arn = str(_req(req, "endpointArn"))
        name = arn.rsplit("/", 1)[-1]
        if br.marketplace_endpoint(arn) is not None:
            g.judged.append(f"Marketplace endpoint {name} (still deleting)")
        g.gone.append(f"Marketplace endpoint {name}")
        g.cover("PER-VPC-1", marketplace_resource(arn, name), f"Marketplace endpoint {name} was deleted.")
        _requirement_recheck(call, rt, g)
        return
    if call.event_name in MARKETPLACE_EVENTS:
        resp = _req(call.response, "marketplaceModelEndpoint") or {}
        arn = _req(resp, "endpointArn") or _req(req, "endpointArn")
        ep = br.marketplace_endpoint(str(arn)) if arn else None
        if ep is None and not arn:
            ep = marketplace_from_config(
                marketplace_endpoint_arn(call.region, call.account, str(_req(req, "endpointName"))),
                str(_req(req, "modelSourceIdentifier") or ""),
                _req(req, "endpointConfig"),
            )
        if ep is None:
            g.gone.append(f"Marketplace endpoint {arn}")
            return
        chain = judge_marketplace_endpoint(call, rt, g, ep)
        source = _model_label(ep.model_source)
        _guardrail_requirement(call, rt, g, [f"Marketplace endpoint {ep.name} ({source})"], chain=chain)
    elif call.event_name == "CreateModelImportJob":
        name = str(_req(req, "importedModelName") or _req(req, "jobName"))
        g.judged.append(f"imported model {name}")
        source = _obj(_obj(_req(req, "modelDataSource")).get("s3DataSource")).get("s3Uri") or ""
        chain = (f"model import job {_req(req, 'jobName')}", f"imported model {name}")
        _guardrail_requirement(
            call, rt, g, [f"imported model {name}" + (f" from {source}" if source else "")], chain=chain
        )
    elif call.event_name == "CreateCustomModelDeployment":
        # Custom Model Import served on demand: Bedrock's own fleet, no VPC of the account's
        # (PER-VPC-1 does not apply); what it needs is the prompt-attack guardrail.
        name = str(_req(req, "modelDeploymentName") or "?")
        model = str(_req(req, "modelArn") or "")
        g.judged.append(f"custom model deployment {name}")
        chain = (f"custom model deployment {name}", f"model {model.rsplit('/', 1)[-1] or '?'}")
        _guardrail_requirement(
            call, rt, g, [f"custom model deployment {name}" + (f" of {model}" if model else "")], chain=chain
        )
    elif call.event_name in ENFORCEMENT_EVENTS:
        _gather_enforcement(call, rt, g, req)
    elif call.event_name in RESOURCE_POLICY_EVENTS:
        _gather_resource_policy(call, rt, g, req)
    else:
        _gather_guardrail_change(call, rt, g, req)


def judge_marketplace_endpoint(call: ApiCall, rt: Runtime, g: Gathered, ep: Any) -> tuple[str, ...]:
    """PER-VPC-1 (and its groups, as the model tier) on one Marketplace endpoint's whole
    configuration: the event path's and the sweep's one evaluation. Returns the chain."""
    g.judged.append(f"Marketplace endpoint {ep.name}")
    chain = (f"Marketplace endpoint {ep.name}", f"model {_model_label(ep.model_source)}")
    g.cover(
        "PER-VPC-1",
        marketplace_resource(ep.arn, ep.name),
        f"Marketplace endpoint {ep.name} runs in subnets {', '.join(ep.subnets)}.",
    )
    if not ep.subnets or not ep.security_groups:
        g.issues.append(marketplace_outside_vpc(ep.arn, ep.name, chain))
    else:
        facts = ModelFacts(
            name=ep.name,
            arn=ep.arn,
            subnets=ep.subnets,
            security_groups=ep.security_groups,
            network_isolation=True,
        )
        _judge_models(call, rt, g, [(chain, facts)], kind="bedrock")
    return chain


def sweep_marketplace(call: ApiCall, rt: Runtime) -> Gathered:
    """The sweep's way in for Bedrock Marketplace endpoints: ListMarketplaceModelEndpoints,
    paginated, then GetMarketplaceModelEndpoint for each (the listing's summaries carry no
    endpoint configuration), judged by ``judge_marketplace_endpoint`` as their events are."""
    g = Gathered()
    if rt.policy.mode("PER-VPC-1") == "off":
        return g
    br = _bedrock(rt)
    for arn in br.marketplace_endpoint_arns():
        ep = br.marketplace_endpoint(arn)
        if ep is None:
            continue  # deleted since the listing
        judge_marketplace_endpoint(call, rt, g, ep)
    g.sg_decisions.clear()  # the sweep judges every group once, in its own pass
    return g


def _model_label(source: str) -> str:
    """``.../hub-content/SageMakerPublicHub/Model/<name>/<version>`` -> ``<name>/<version>``."""
    parts = source.split("/")
    if "Model" in parts:
        i = parts.index("Model")
        return "/".join(parts[i + 1 : i + 3]) or source
    return parts[-1] or "?"


def _guardrail_requirement(
    call: ApiCall, rt: Runtime, g: Gathered, served: list[str], *, chain: tuple[str, ...]
) -> None:
    from perimeter.model_posture.guardrails import missing_guardrail_issue

    if rt.policy.mode("PER-GR-1") == "off":
        return
    br = _bedrock(rt)
    guardrails = br.guardrails()
    enforced = br.enforced()
    issue = missing_guardrail_issue(
        account=call.account,
        region=call.region,
        served=served,
        guardrails=guardrails,
        enforced=enforced,
        chain=chain,
    )
    g.notes["guardrails"] = [gr.label for gr in guardrails if gr.blocks_prompt_attacks]
    from perimeter.model_posture.guardrails import enforcement_text

    g.notes["guardrail_required"] = enforcement_text(
        enforced, [gr for gr in guardrails if gr.blocks_prompt_attacks]
    )
    if issue:
        g.issues.append(issue)
    _cover_requirement(call, g, guardrails)


def _gather_guardrail_change(call: ApiCall, rt: Runtime, g: Gathered, req: Mapping[str, Any]) -> None:
    from perimeter.model_posture.guardrails import deleted_issue, missing_guardrail_issue, weakened_issue

    if rt.policy.mode("PER-GR-1") == "off":
        return
    br = _bedrock(rt)
    gid = _req(req, "guardrailIdentifier") or _req(call.response, "guardrailId")
    if gid and str(gid).startswith("arn:"):
        gid = str(gid).rsplit("/", 1)[-1]
    served = br.served_models()
    enforced = br.enforced()
    if call.event_name == "DeleteGuardrail":
        remaining = br.guardrails()
        g.judged.append(f"guardrail {gid}")
        g.issues.append(
            deleted_issue(
                account=call.account,
                region=call.region,
                guardrail_id=str(gid),
                version=_req(req, "guardrailVersion"),
                remaining=remaining,
                enforced=enforced,
                served=served,
            )
        )
        return
    if call.event_name == "UpdateGuardrail" and gid:
        after = br.guardrail(str(gid))
        if after is None:
            g.gone.append(f"guardrail {gid}")
            return
        g.judged.append(f"guardrail {gid}")
        latest = br.latest_version(str(gid))
        before = br.guardrail(str(gid), latest) if latest else None
        if before is not None:
            issue = weakened_issue(
                account=call.account, region=call.region, before=before, after=after, enforced=enforced
            )
            if issue:
                g.issues.append(issue)
            else:
                g.cover(
                    "PER-GR-1",
                    arn_resource(
                        "Other",
                        after.arn or before.arn,
                        after.guardrail_id,
                        {"GuardrailId": after.guardrail_id},
                    ),
                    f"guardrail {after.label} is no weaker than version {before.version}.",
                )
    if call.event_name == "CreateGuardrailVersion" and gid:
        _judge_published_version(call, br, g, str(gid), str(_req(call.response, "version") or ""), enforced)
    guardrails = br.guardrails()
    issue = missing_guardrail_issue(
        account=call.account,
        region=call.region,
        served=served,
        guardrails=guardrails,
        enforced=enforced,
        chain=(f"guardrail {gid}",) if gid else (),
    )
    if issue:
        g.issues.append(issue)
    _cover_requirement(call, g, guardrails, served=served)
    if call.event_name == "CreateGuardrail":
        g.judged.append(f"guardrail {gid or _req(req, 'name')}")


def _judge_published_version(
    call: ApiCall, br: Any, g: Gathered, gid: str, version: str, enforced: list[Any]
) -> None:
    """CreateGuardrailVersion publishes the DRAFT as version N: applications and enforced
    configurations that move to N get whatever N lost against N-1, filter by filter."""
    from perimeter.model_posture.guardrails import weakened_issue

    if not version.isdigit():
        return
    after = br.guardrail(gid, version)
    if after is None:
        g.gone.append(f"guardrail {gid} v{version}")
        return
    g.judged.append(f"guardrail {gid} v{version}")
    resource = arn_resource("Other", after.arn, after.guardrail_id, {"GuardrailId": after.guardrail_id})
    before = br.guardrail(gid, str(int(version) - 1)) if int(version) > 1 else None
    if before is None:
        g.cover("PER-GR-1", resource, f"guardrail {after.label} is its first published version.")
        return
    issue = weakened_issue(
        account=call.account, region=call.region, before=before, after=after, enforced=enforced
    )
    if issue:
        g.issues.append(issue)
    else:
        g.cover("PER-GR-1", resource, f"guardrail {after.label} is no weaker than version {before.version}.")


def _gather_enforcement(call: ApiCall, rt: Runtime, g: Gathered, req: Mapping[str, Any]) -> None:
    """Put/DeleteEnforcedGuardrailConfiguration: judge every enforced configuration as Bedrock
    now holds it, each with its guardrail at the version it names."""
    from perimeter.model_posture.guardrails import enforcement_issue, enforcement_resource

    if rt.policy.mode("PER-GR-1") == "off":
        return
    br = _bedrock(rt)
    enforced = br.enforced()
    applied = [(e, br.guardrail(e.guardrail_id, e.version or None)) for e in enforced]
    served = br.served_models()
    deleted = (
        str(_req(req, "configId")) if call.event_name == "DeleteEnforcedGuardrailConfiguration" else None
    )
    g.judged.append("enforced guardrail configurations")
    g.notes["enforced"] = [e.describe() for e in enforced]
    issue = enforcement_issue(
        account=call.account, region=call.region, applied=applied, served=served, deleted=deleted
    )
    resource = enforcement_resource(call.account, call.region)
    if issue:
        g.issues.append(issue)
        return
    strong = [e.describe() for e, gr in applied if gr is not None and gr.blocks_prompt_attacks]
    g.cover(
        "PER-GR-1",
        resource,
        f"{'; '.join(strong)} applies a HIGH prompt-attack guardrail to every invocation."
        if strong
        else "Bedrock serves no model in this region.",
    )


def _gather_resource_policy(call: ApiCall, rt: Runtime, g: Gathered, req: Mapping[str, Any]) -> None:
    """Put/DeleteResourcePolicy on a Bedrock resource: the policy Bedrock holds now, judged whole
    (the record's copy may be stale by the time the event arrives)."""
    from perimeter.iam.evaluate import resource_policy_issue

    if rt.policy.mode("PER-IAM-1") == "off":
        return
    resource_arn = str(_req(req, "resourceArn") or _req(call.response, "resourceArn") or "")
    if not resource_arn:
        raise MalformedEvent(f"{call.event_name}: request lacks resourceArn")
    doc = _bedrock(rt).resource_policy(resource_arn)
    name = resource_arn.split(":", 5)[-1]
    g.judged.append(f"resource policy of {name}")
    issue = resource_policy_issue(doc, resource_arn)
    if issue:
        g.issues.append(issue)
    else:
        g.cover(
            "PER-IAM-1",
            arn_resource("Other", resource_arn, name, {"ResourcePolicy": "bedrock"}),
            f"the resource policy of {name} grants no unconditioned wildcard principal"
            + (" (it has none)." if not doc else "."),
        )


def _cover_requirement(
    call: ApiCall, g: Gathered, guardrails: list[Any], served: list[str] | None = None
) -> None:
    """The account-level PER-GR-1 pair is clean when a HIGH prompt-attack guardrail exists (or
    nothing is served)."""
    from perimeter.model_posture.guardrails import account_resource

    strong = [gr.label for gr in guardrails if gr.blocks_prompt_attacks]
    if strong:
        why = f"guardrail(s) {', '.join(strong)} block prompt attacks at HIGH."
    elif served is not None and not served:
        why = "Bedrock serves no model in this region."
    else:
        return
    g.cover("PER-GR-1", account_resource(call.account, call.region), why)


def _requirement_recheck(call: ApiCall, rt: Runtime, g: Gathered, *, sagemaker: bool = False) -> None:
    """After a serving resource is deleted: is a prompt-attack guardrail still required?"""
    if rt.policy.mode("PER-GR-1") == "off":
        return
    from perimeter.model_posture.guardrails import account_resource

    served = _bedrock(rt).served_models()
    if sagemaker:
        served += [f"SageMaker endpoint {e}" for e in _sagemaker(rt).serving_endpoints()]
    if not served:
        g.cover("PER-GR-1", account_resource(call.account, call.region), "no model is served any more.")
        return
    _guardrail_requirement(call, rt, g, served, chain=())


def _gather_deleted_endpoint(call: ApiCall, rt: Runtime, g: Gathered, sm: Any) -> None:
    """DeleteEndpoint: the endpoint's models keep their own findings (they still exist and can
    be deployed again); what ends is the endpoint's need for a guardrail when the policy
    requires one for SageMaker."""
    name = str(_req(call.request, "endpointName"))
    g.gone.append(f"endpoint {name}")
    if "sagemaker" in rt.policy.guardrails.required_for:
        _requirement_recheck(call, rt, g, sagemaker=True)
