"""Launch templates: security groups reached another way (issue 9 A).

A launch template is not traffic: nothing listens until an instance is launched from it, and
RunInstances is judged then (DefaultSgGuard). What a template can do is make every future launch
land on the VPC's default group, or give a model-tier instance a public IP. A template version
cannot be "revoked" (versions are immutable), so both are detect-only findings on the template,
with the fix (a new version, made the default):

- **PER-DSG-2** a version that launches instances on the default group (named by id in
  ``SecurityGroupIds``/``NetworkInterfaces[].Groups``, or by name ``default``).
- **PER-VPC-1** a version that launches a model-tier instance (a group tagged as the model tier)
  with ``AssociatePublicIpAddress`` on: direct internet access for a model.

A world-open group named by a template is not judged here: its rules are SgGuard's (judged, and
revoked in ``enforce``, when they were authorized; the sweep judges them again), and a template
adds no rule to it.

Whole state, not the event's delta: the versions launches use (``$Default`` and ``$Latest``) are
read back, so a new clean version made the default (CreateLaunchTemplateVersion then
ModifyLaunchTemplate) or DeleteLaunchTemplate resolves the finding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perimeter.core.arns import ec2_arn
from perimeter.core.events import ApiCall, MalformedEvent, unwrap
from perimeter.posture.controls import Evaluation, Issue, arn_resource

#: ModifyLaunchTemplate (a new default version) and DeleteLaunchTemplate are the fixing calls.
EVENTS = frozenset(
    {"CreateLaunchTemplate", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "DeleteLaunchTemplate"}
)


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    template_id: str
    name: str
    number: int
    default: bool
    group_ids: tuple[str, ...]
    group_names: tuple[str, ...]
    public_ip: bool

    @property
    def label(self) -> str:
        return f"version {self.number}" + (" ($Default)" if self.default else "")


def version_from_api(raw: Mapping[str, Any]) -> TemplateVersion:
    data = raw.get("LaunchTemplateData") or {}
    groups = [str(g) for g in data.get("SecurityGroupIds") or []]
    public = False
    for nic in data.get("NetworkInterfaces") or []:
        groups += [str(g) for g in nic.get("Groups") or []]
        public = public or bool(nic.get("AssociatePublicIpAddress"))
    return TemplateVersion(
        template_id=str(raw.get("LaunchTemplateId", "")),
        name=str(raw.get("LaunchTemplateName", "")),
        number=int(raw.get("VersionNumber", 0)),
        default=bool(raw.get("DefaultVersion")),
        group_ids=tuple(dict.fromkeys(groups)),
        group_names=tuple(str(n) for n in data.get("SecurityGroups") or []),
        public_ip=public,
    )


def template_ref(call: ApiCall) -> tuple[str | None, str | None]:
    """(template id, template name) the call names: the response's id when there is one."""
    resp = unwrap(call.response or {})
    resp = resp.get(f"{call.event_name}Response", resp) if isinstance(resp, Mapping) else {}
    for holder in ("launchTemplate", "launchTemplateVersion"):
        inner = resp.get(holder)
        if isinstance(inner, Mapping) and inner.get("launchTemplateId"):
            return str(inner["launchTemplateId"]), inner.get("launchTemplateName")
    req = unwrap(call.request or {})
    req = req.get(f"{call.event_name}Request", req) if isinstance(req, Mapping) else {}
    tid, name = req.get("LaunchTemplateId"), req.get("LaunchTemplateName")
    if not tid and not name:
        raise MalformedEvent(f"{call.event_name}: record names no launch template (id or name)")
    return (str(tid) if tid else None), (str(name) if name else None)


def template_resource(region: str, account: str, template_id: str, name: str) -> Any:
    return arn_resource(
        "AwsEc2LaunchTemplate",
        ec2_arn(region, account, "launch-template", template_id),
        template_id,
        {"LaunchTemplateName": name},
    )


def template_issues(
    versions: Sequence[TemplateVersion],
    *,
    defaults: frozenset[str],
    model_groups: frozenset[str],
    region: str,
    account: str,
) -> list[Issue]:
    """PER-DSG-2 and PER-VPC-1 on the versions launches use. ``defaults``: the ids among the
    versions' groups that are default groups; ``model_groups``: those tagged as the model tier."""
    out: list[Issue] = []
    if not versions:
        return out
    first = versions[0]
    resource = template_resource(region, account, first.template_id, first.name)
    on_default = [v for v in versions if set(v.group_ids) & defaults or "default" in v.group_names]
    if on_default:
        which = ", ".join(v.label for v in on_default)
        out.append(
            Issue(
                control_id="PER-DSG-2",
                resource=resource,
                score=60,
                reasons=("every instance launched from it lands on the VPC's default group (+60)",),
                summary=(
                    f"Launch template {first.name} ({first.template_id}) {which} launches instances on the "
                    "VPC's default security group: every launch joins whatever the default group allows and "
                    "everything else on it."
                ),
                chain=(f"launch template {first.name}", *(v.label for v in on_default), "default group"),
                fix=(
                    f"aws ec2 create-launch-template-version --launch-template-id {first.template_id} "
                    f"--source-version {on_default[0].number} --launch-template-data "
                    '\'{"SecurityGroupIds": ["<tier-sg-id>"]}\' (the groups of NetworkInterfaces too, if it '
                    "names them), then aws ec2 modify-launch-template --launch-template-id "
                    f"{first.template_id} --default-version <new version>."
                ),
            )
        )
    public_model = [v for v in versions if v.public_ip and set(v.group_ids) & model_groups]
    if public_model:
        which = ", ".join(v.label for v in public_model)
        tier = sorted(set().union(*(set(v.group_ids) & model_groups for v in public_model)))
        out.append(
            Issue(
                control_id="PER-VPC-1",
                resource=resource,
                score=70,
                reasons=("a model-tier instance gets a public IP on launch: direct internet access (+70)",),
                summary=(
                    f"Launch template {first.name} ({first.template_id}) {which} launches model-tier "
                    f"instances ({', '.join(tier)}) with AssociatePublicIpAddress: each one is reachable "
                    "from the internet wherever its group and the subnet's route allow."
                ),
                chain=(f"launch template {first.name}", *(v.label for v in public_model), *tier),
                fix=(
                    f"aws ec2 create-launch-template-version --launch-template-id {first.template_id} "
                    f"--source-version {public_model[0].number} with NetworkInterfaces "
                    "AssociatePublicIpAddress=false (a private subnet; reach the model through a load "
                    "balancer or PrivateLink), then modify-launch-template --default-version <new version>."
                ),
            )
        )
    return out


def evaluate(
    versions: Sequence[TemplateVersion],
    *,
    defaults: frozenset[str],
    model_groups: frozenset[str],
    region: str,
    account: str,
    template_id: str,
    name: str,
) -> Evaluation:
    """Every (control, template) judged: issues, and clean pairs (their findings resolve)."""
    ev = Evaluation()
    resource = template_resource(region, account, template_id, name)
    if not versions:
        for control in ("PER-DSG-2", "PER-VPC-1"):
            ev.cover(control, resource, f"launch template {name or template_id} was deleted.")
        return ev
    ev.issues.extend(
        template_issues(
            versions, defaults=defaults, model_groups=model_groups, region=region, account=account
        )
    )
    used = ", ".join(v.label for v in versions)
    ev.cover("PER-DSG-2", resource, f"launch template {name} ({used}) names no default security group.")
    ev.cover(
        "PER-VPC-1", resource, f"launch template {name} ({used}) gives no model-tier instance a public IP."
    )
    return ev


def handle(call: ApiCall, rt: Any, context: Any = None) -> dict[str, Any]:
    """One launch-template call (already admitted): read the versions launches use, judge them
    whole, report (findings resolve when clean or deleted). Reads and Security Hub only."""
    from perimeter.posture.act import report_evaluation

    template_id, name = template_ref(call)
    net = rt.network
    versions = [version_from_api(v) for v in net.launch_template_versions(template_id, name)]
    template_id = template_id or (versions[0].template_id if versions else None) or str(name)
    name = (versions[0].name if versions else None) or name or template_id
    groups = net.groups({g for v in versions for g in v.group_ids}) if versions else {}
    defaults = frozenset(g for g, info in groups.items() if info.is_default)
    model = frozenset(g for g, info in groups.items() if rt.policy.tiers.tier_of(info.tags) == "model")
    ev = evaluate(
        versions,
        defaults=defaults,
        model_groups=model,
        region=call.region,
        account=call.account,
        template_id=template_id,
        name=name,
    )
    judged = [f"launch template {name} ({', '.join(v.label for v in versions)})"] if versions else []
    gone = [] if versions else [f"launch template {name}"]
    base = {"event_id": call.event_id, "event_name": call.event_name, "resources": judged}
    return report_evaluation(
        call, ev, rt, context, base=base, gone=gone, judged_what=judged, may_create=False
    )
