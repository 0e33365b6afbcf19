"""Organization mode: act in the account and region an event came from.

In organization mode (``Mode=organization`` in template.yaml) member accounts forward their
routed CloudTrail calls to the security account's event bus, and each holds a narrow role
(member.yaml) that only the security account's function roles may assume, with an external id.
A handler asks ``runtime_for(event, home)`` for the runtime to use:

- single-account mode (no ``PERIMETER_MEMBER_ROLE_NAME``), or an event of the function's own
  account and region: ``home`` itself, the container's runtime with the clients built at init;
  nothing is parsed and nothing is built;
- any other (account, region): a ``MemberRuntime``. The account's own services (EC2, SageMaker,
  Bedrock, IAM, CloudWatch Logs, Security Hub) go through the member role, assumed in that
  account; Perimeter's own stores (the DynamoDB tables, the SNS topic, the policy parameter,
  Organizations) stay the security account's, built once by ``home``.

Security Hub: with the default product, ``BatchImportFindings`` must come from the account the
finding names (``AwsAccountId``; botocore's securityhub documentation). So a member's findings are
imported into the member's own hub, with its ``AwsAccountId`` and ``ProductArn``, and the security
account sees them as the organization's Security Hub administrator (delegated admin), which is
Security Hub's own aggregation.

Credentials: assumed once per (account, role) per container, reused until five minutes before
they expire, then assumed again; clients are cached with them and rebuilt on refresh. The role
session name names the CloudTrail event that assumed it (``perimeter-<event id>``, at most 64
characters of ``[\\w+=,.@-]``), so the member's CloudTrail says which event Perimeter acted on;
later events of the same container reuse the session until it is refreshed, and their audit
records name them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from perimeter.core.runtime import Runtime

#: Services whose calls stay in the security account: Perimeter's own tables, topic, policy
#: parameter, the organization's structure and the sweep's fan-out.
HOME_SERVICES = frozenset({"dynamodb", "sns", "ssm", "organizations", "lambda", "sts"})
#: Refresh assumed credentials this long before they expire.
REFRESH_MARGIN = dt.timedelta(minutes=5)
#: AssumeRole's RoleSessionName: 2-64 characters of [\w+=,.@-].
_SESSION_CHARS = re.compile(r"[^\w+=,.@-]")


def role_session_name(event_id: str | None) -> str:
    """``perimeter-<event id>``, cut to 64 characters, other characters as ``-``."""
    name = _SESSION_CHARS.sub("-", f"perimeter-{event_id or 'sweep'}")
    return name[:64]


def member_role_name(base: str, region: str) -> str:
    """The member stack names its role per region (IAM names are global to an account, and a
    StackSet deploys the stack to every region)."""
    return f"{base}-{region}"


def member_role_arn(partition: str, account: str, base: str, region: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{member_role_name(base, region)}"


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True, slots=True)
class OrgSettings:
    """Organization mode's settings, from the environment template.yaml gives every function."""

    role_name: str
    external_id: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OrgSettings | None:
        e = os.environ if env is None else env
        name = (e.get("PERIMETER_MEMBER_ROLE_NAME") or "").strip()
        if not name:
            return None
        return cls(role_name=name, external_id=(e.get("PERIMETER_EXTERNAL_ID") or "").strip() or None)


@dataclass(frozen=True, slots=True)
class _Assumed:
    keys: Mapping[str, str]
    expires: dt.datetime
    session_name: str


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MemberSessions:
    """Assumed-role credentials per role ARN, and clients per (role ARN, region, service), for
    one container. ``assume`` is the security account's STS client's ``assume_role``."""

    def __init__(
        self,
        assume: Callable[..., Mapping[str, Any]],
        build: Callable[..., Any],
        *,
        external_id: str | None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._assume = assume
        self._build = build
        self._external_id = external_id
        self._clock = clock
        self._creds: dict[str, _Assumed] = {}
        self._clients: dict[tuple[str, str, str], tuple[Any, dt.datetime]] = {}
        self._lock = threading.Lock()
        self.assumed = 0  # how many AssumeRole calls this container made (tests, logs)

    def credentials(self, role_arn: str, event_id: str | None) -> _Assumed:
        with self._lock:
            cur = self._creds.get(role_arn)
            if cur is not None and self._clock() < cur.expires - REFRESH_MARGIN:
                return cur
            kwargs: dict[str, Any] = {
                "RoleArn": role_arn,
                "RoleSessionName": role_session_name(event_id),
                "DurationSeconds": 3600,
            }
            if self._external_id:
                kwargs["ExternalId"] = self._external_id
            resp = self._assume(**kwargs)
            self.assumed += 1
            c = resp["Credentials"]
            expires = c["Expiration"]
            if isinstance(expires, str):
                expires = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=dt.UTC)
            cur = _Assumed(
                keys={
                    "aws_access_key_id": c["AccessKeyId"],
                    "aws_secret_access_key": c["SecretAccessKey"],
                    "aws_session_token": c["SessionToken"],
                },
                expires=expires,
                session_name=kwargs["RoleSessionName"],
            )
            self._creds[role_arn] = cur
            return cur

    def client(self, role_arn: str, region: str, service: str, event_id: str | None) -> Any:
        creds = self.credentials(role_arn, event_id)
        key = (role_arn, region, service)
        with self._lock:
            hit = self._clients.get(key)
            if hit is not None and hit[1] == creds.expires:
                return hit[0]
        client = self._build(service, region, creds.keys)
        with self._lock:
            self._clients[key] = (client, creds.expires)
        return client


class MemberRuntime(Runtime):
    """A runtime for one (member account, region): the account's services through the member
    role, Perimeter's own stores through the security account's runtime (``home``)."""

    def __init__(
        self,
        home: Runtime,
        org: OrgSettings,
        sessions: MemberSessions,
        account: str,
        region: str,
        event_id: str | None,
    ) -> None:
        role = member_role_name(org.role_name, region)
        settings = replace(
            home.settings,
            account_id=account,
            region=region,
            # the member role's own calls come back through the member's CloudTrail: ignored
            self_roles=home.settings.self_roles | {role},
        )
        super().__init__(settings)
        self.home = home
        self.org = org
        self.sessions = sessions
        self.event_id = event_id
        self.role_arn = member_role_arn(partition_of(region), account, org.role_name, region)

    @property
    def session(self) -> Any:  # type: ignore[override]
        return self.home.session

    def client(self, service: str) -> Any:
        if service in HOME_SERVICES:
            return self.home.client(service)
        return self.sessions.client(self.role_arn, self.settings.region, service, self.event_id)

    @cached_property
    def policy(self) -> Any:
        """The home policy with the account's (and its OUs') overrides merged over it."""
        base = self.home.policy
        if not base.has_overrides:
            return base
        ous: tuple[str, ...] = ()
        if base.overrides_ous:
            ous = org_path(self.home, self.settings.account_id or "")
        return base.for_account(self.settings.account_id or "", ous)

    @property
    def pool(self) -> Any:  # type: ignore[override]
        return self.home.pool

    @cached_property
    def flow_log_role_arn(self) -> str:
        """The member stack's flow-log delivery role in that account and region."""
        name = member_role_name(f"{self.org.role_name}-flow-logs", self.settings.region)
        return f"arn:{partition_of(self.settings.region)}:iam::{self.settings.account_id}:role/{name}"


_OU_CACHE: dict[str, tuple[str, ...]] = {}


def sessions_for(home: Runtime, org: OrgSettings) -> MemberSessions:
    """One ``MemberSessions`` per home runtime, kept on it: so one per container, and a SnapStart
    restore, which replaces the runtime, drops credentials that must not outlive the snapshot."""
    cur: MemberSessions | None = home.__dict__.get("_member_sessions")
    if cur is None:
        session = home.session
        make = session.client if hasattr(session, "client") else session.create_client
        config = home.client_config

        def build(service: str, region: str, keys: Mapping[str, str]) -> Any:
            return make(service, region_name=region, config=config, **keys)

        cur = MemberSessions(home.client("sts").assume_role, build, external_id=org.external_id)
        home.__dict__["_member_sessions"] = cur
    return cur


def forget() -> None:
    """Drop the cached OU paths (tests; credentials and clients live on their home runtime)."""
    _OU_CACHE.clear()


def org_path(home: Runtime, account: str) -> tuple[str, ...]:
    """The OUs above ``account``, root first (``organizations:ListParents``, from the security
    account: it must be the management account or a delegated administrator), cached per
    container."""
    hit = _OU_CACHE.get(account)
    if hit is not None:
        return hit
    orgs = home.client("organizations")
    path: list[str] = []
    child = account
    for _ in range(6):  # AWS nests OUs at most five deep under the root
        parents = orgs.list_parents(ChildId=child).get("Parents", [])
        if not parents or parents[0].get("Type") == "ROOT":
            break
        child = str(parents[0]["Id"])
        path.append(child)
    out = tuple(reversed(path))
    _OU_CACHE[account] = out
    return out


def _where(event: Any) -> tuple[str | None, str | None, str | None]:
    """(account, region, event id) as ``perimeter.core.events.parse_event`` reads them: the CloudTrail
    record's ``recipientAccountId``/``awsRegion`` first, the envelope's ``account``/``region``
    otherwise. Anything unexpected gives Nones: the home runtime then fails the event clearly, or
    ignores it as another account's. An envelope whose ``account`` is not the record's
    ``recipientAccountId`` is such a case: EventBridge keeps the source account's id on a forwarded
    event, so the two disagree only in an event nobody should act on in either account."""
    if not isinstance(event, Mapping):
        return None, None, None
    detail = event.get("detail")
    detail = detail if isinstance(detail, Mapping) else {}
    envelope, recipient = event.get("account"), detail.get("recipientAccountId")
    if envelope and recipient and envelope != recipient:
        return None, None, None
    account = recipient or envelope
    region = detail.get("awsRegion") or event.get("region")
    eid = detail.get("eventID") or event.get("id")
    ok = isinstance(account, str) and isinstance(region, str)
    return (account, region, str(eid) if eid else None) if ok else (None, None, None)


def runtime_for(event: Any, home: Runtime, env: Mapping[str, str] | None = None) -> Runtime:
    """The runtime that acts on ``event``: ``home`` unless organization mode is on and the event
    is another account's or region's."""
    org = OrgSettings.from_env(env)
    if org is None:
        return home
    account, region, event_id = _where(event)
    if account is None or region is None:
        return home
    if account == home.settings.account_id and region == home.settings.region:
        return home
    return runtime_of(home, org, account, region, event_id)


def runtime_of(
    home: Runtime, org: OrgSettings, account: str, region: str, event_id: str | None = None
) -> Runtime:
    """The runtime of one (account, region): the sweep's fan-out uses it too."""
    if account == home.settings.account_id:
        # The security account's own resources in another region: its own credentials, its
        # clients for that region built once per container.
        regional: dict[str, Runtime] = home.__dict__.setdefault("_regional", {})
        rt = regional.get(region)
        if rt is None:
            rt = Runtime(replace(home.settings, region=region), session=home._session)
            rt.__dict__["policy"] = home.policy
            rt.__dict__["pool"] = home.pool  # the container's threads, started in its init phase
            regional[region] = rt
        return rt
    return MemberRuntime(home, org, sessions_for(home, org), account, region, event_id)
