"""Pod Security admission, as the real API server's built-in plugin does it (k8s.io/pod-security-admission).

A namespace opts in with labels: ``pod-security.kubernetes.io/enforce: baseline|restricted`` refuses a
pod that violates the level (403, ``violates PodSecurity "restricted:latest": ...``), ``warn`` only warns
(on pods and on workload templates: ``would violate PodSecurity ...``). The checks and their messages
are the library's (``policy/check_*.go``), in its order: baseline checks, then restricted ones, each
level by check id. Not modelled: AppArmor, SELinux options, Windows host process (the operator sets none).

``PodSecurityStore`` is the store with this admission in front of every create, so pods that the Job
controller makes are admitted (or refused, as a ``FailedCreate`` on the Job) like a user's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from testapi.schemas import ResourceType
from testapi.store import ApiError, Store

PREFIX = "pod-security.kubernetes.io/"
LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                         "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
TEMPLATE_PATHS = {"Job": ("spec", "template", "spec"), "Deployment": ("spec", "template", "spec"),
                  "StatefulSet": ("spec", "template", "spec"), "DaemonSet": ("spec", "template", "spec"),
                  "ReplicaSet": ("spec", "template", "spec"), "CronJob": ("spec", "jobTemplate", "spec", "template",
                                                                           "spec")}
Violation = tuple[str, str]  # (forbidden reason, detail)


def _quote(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _containers(names: list[str]) -> str:
    return f'{"container" if len(names) == 1 else "containers"} {_quote(names)}'


def _all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", []), *spec.get("ephemeralContainers", [])]


def _sc(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("securityContext") or {}


# --- baseline ----------------------------------------------------------------------------------------


def _capabilities_baseline(spec: dict[str, Any]) -> Violation | None:
    bad, caps = [], []
    for c in _all_containers(spec):
        added = [a for a in (_sc(c).get("capabilities") or {}).get("add") or [] if a not in BASELINE_CAPABILITIES]
        if added:
            bad.append(c["name"])
            caps += [a for a in added if a not in caps]
    if bad:
        return "non-default capabilities", (f"{_containers(bad)} must not include {_quote(caps)} in"
                                            " securityContext.capabilities.add")
    return None


def _host_namespaces(spec: dict[str, Any]) -> Violation | None:
    found = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    return ("host namespaces", ", ".join(found)) if found else None


def _host_path_volumes(spec: dict[str, Any]) -> Violation | None:
    bad = [v["name"] for v in spec.get("volumes", []) if "hostPath" in v]
    if bad:
        return "hostPath volumes", f'{"volume" if len(bad) == 1 else "volumes"} {_quote(bad)}'
    return None


def _host_ports(spec: dict[str, Any]) -> Violation | None:
    bad, ports = [], []
    for c in _all_containers(spec):
        used = [str(p["hostPort"]) for p in c.get("ports", []) if p.get("hostPort")]
        if used:
            bad.append(c["name"])
            ports += used
    if bad:
        verb, noun = ("uses" if len(bad) == 1 else "use"), ("hostPort" if len(ports) == 1 else "hostPorts")
        return "hostPort", f'{_containers(bad)} {verb} {noun} {", ".join(ports)}'
    return None


def _privileged(spec: dict[str, Any]) -> Violation | None:
    bad = [c["name"] for c in _all_containers(spec) if _sc(c).get("privileged")]
    return ("privileged", f"{_containers(bad)} must not set securityContext.privileged=true") if bad else None


def _proc_mount(spec: dict[str, Any]) -> Violation | None:
    bad = [c["name"] for c in _all_containers(spec) if _sc(c).get("procMount") not in (None, "Default")]
    if bad:
        return "procMount", f'{_containers(bad)} must not set securityContext.procMount to "Unmasked"'
    return None


def _seccomp_baseline(spec: dict[str, Any]) -> Violation | None:
    details = []
    if (_sc(spec).get("seccompProfile") or {}).get("type") == "Unconfined":
        details.append('pod must not set securityContext.seccompProfile.type to "Unconfined"')
    bad = [c["name"] for c in _all_containers(spec) if (_sc(c).get("seccompProfile") or {}).get("type") == "Unconfined"]
    if bad:
        details.append(f'{_containers(bad)} must not set securityContext.seccompProfile.type to "Unconfined"')
    return ("seccompProfile", "; ".join(details)) if details else None


def _sysctls(spec: dict[str, Any]) -> Violation | None:
    bad = [s["name"] for s in _sc(spec).get("sysctls", []) if s.get("name") not in SAFE_SYSCTLS]
    return ("forbidden sysctls", ", ".join(bad)) if bad else None


# --- restricted --------------------------------------------------------------------------------------


def _allow_privilege_escalation(spec: dict[str, Any]) -> Violation | None:
    bad = [c["name"] for c in _all_containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return ("allowPrivilegeEscalation != false",
                f"{_containers(bad)} must set securityContext.allowPrivilegeEscalation=false")
    return None


def _capabilities_restricted(spec: dict[str, Any]) -> Violation | None:
    no_drop, adding, caps = [], [], []
    for c in _all_containers(spec):
        capabilities = _sc(c).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            no_drop.append(c["name"])
        added = [a for a in capabilities.get("add") or [] if a != "NET_BIND_SERVICE"]
        if added:
            adding.append(c["name"])
            caps += [a for a in added if a not in caps]
    details = []
    if no_drop:
        details.append(f'{_containers(no_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_containers(adding)} must not include {_quote(caps)} in securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _restricted_volumes(spec: dict[str, Any]) -> Violation | None:
    bad, types = [], []
    for v in spec.get("volumes", []):
        kind = next((k for k in v if k != "name"), None)
        if kind is not None and kind not in RESTRICTED_VOLUMES:
            bad.append(v["name"])
            types += [kind] if kind not in types else []
    if bad:
        many = len(bad) > 1
        return "restricted volume types", (f'{"volumes" if many else "volume"} {_quote(bad)}'
                                           f' {"use" if many else "uses"} restricted volume'
                                           f' {"types" if len(types) > 1 else "type"} {_quote(types)}')
    return None


def _run_as_non_root(spec: dict[str, Any]) -> Violation | None:
    pod_value = _sc(spec).get("runAsNonRoot")
    details, explicit_false, implicit = [], [], []
    if pod_value is False:
        details.append("pod must not set securityContext.runAsNonRoot=false")
    for c in _all_containers(spec):
        value = _sc(c).get("runAsNonRoot")
        if value is False:
            explicit_false.append(c["name"])
        elif value is None and pod_value is not True:
            implicit.append(c["name"])
    if explicit_false:
        details.append(f"{_containers(explicit_false)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        details.append(f"pod or {_containers(implicit)} must set securityContext.runAsNonRoot=true")
    return ("runAsNonRoot != true", "; ".join(details)) if details else None


def _run_as_user(spec: dict[str, Any]) -> Violation | None:
    details = ["pod must not set runAsUser=0"] if _sc(spec).get("runAsUser") == 0 else []
    bad = [c["name"] for c in _all_containers(spec) if _sc(c).get("runAsUser") == 0]
    if bad:
        details.append(f"{_containers(bad)} must not set runAsUser=0")
    return ("runAsUser=0", "; ".join(details)) if details else None


def _seccomp_restricted(spec: dict[str, Any]) -> Violation | None:
    ok = ("RuntimeDefault", "Localhost")
    pod_type = (_sc(spec).get("seccompProfile") or {}).get("type")
    details, bad_set, unset = [], [], []
    if pod_type is not None and pod_type not in ok:
        details.append(f'pod must not set securityContext.seccompProfile.type to "{pod_type}"')
    for c in _all_containers(spec):
        ctype = (_sc(c).get("seccompProfile") or {}).get("type")
        if ctype is not None and ctype not in ok:
            bad_set.append(c["name"])
        elif ctype is None and pod_type is None:
            unset.append(c["name"])
    if bad_set:
        details.append(f'{_containers(bad_set)} must not set securityContext.seccompProfile.type to "Unconfined"')
    if unset:
        details.append(f'pod or {_containers(unset)} must set securityContext.seccompProfile.type to'
                       ' "RuntimeDefault" or "Localhost"')
    return ("seccompProfile", "; ".join(details)) if details else None


# Each level's checks by check id (the library's order); restricted replaces seccompProfile_baseline.
BASELINE = {"capabilities_baseline": _capabilities_baseline, "hostNamespaces": _host_namespaces,
            "hostPathVolumes": _host_path_volumes, "hostPorts": _host_ports, "privileged": _privileged,
            "procMount": _proc_mount, "seccompProfile_baseline": _seccomp_baseline, "sysctls": _sysctls}
RESTRICTED = {"allowPrivilegeEscalation": _allow_privilege_escalation,
              "capabilities_restricted": _capabilities_restricted, "restrictedVolumes": _restricted_volumes,
              "runAsNonRoot": _run_as_non_root, "runAsUser": _run_as_user,
              "seccompProfile_restricted": _seccomp_restricted}


def violations(pod_spec: dict[str, Any], level: str) -> list[str]:
    """``reason (detail)`` for each check of ``level`` that ``pod_spec`` fails, in the library's order."""
    if level == "privileged":
        return []
    checks = [fn for cid, fn in sorted(BASELINE.items()) if not (level == "restricted" and cid ==
                                                                   "seccompProfile_baseline")]
    if level == "restricted":
        checks += [fn for _, fn in sorted(RESTRICTED.items())]
    found = [v for check in checks if (v := check(pod_spec)) is not None]
    return [f"{reason} ({detail})" if detail else reason for reason, detail in found]


def namespace_policy(labels: dict[str, str], mode: str) -> tuple[str, str] | None:
    """(level, version) a namespace sets for ``mode`` (enforce/warn/audit), or None (privileged).
    An unknown level fails closed to restricted, as the library does."""
    level = labels.get(f"{PREFIX}{mode}")
    if level is None or level == "privileged":
        return None
    return (level if level in LEVELS else "restricted"), labels.get(f"{PREFIX}{mode}-version", "latest")


class PodSecurityStore(Store):
    """The store behind Pod Security admission: pods are refused under ``enforce`` and warned about
    under ``warn``; workload templates are warned about under ``warn`` (never refused, as upstream)."""

    def create(self, rt: ResourceType, ns: str | None, body: dict[str, Any], **kwargs: Any
               ) -> tuple[dict[str, Any], list[str]]:
        warnings: list[str] = []
        path = ("spec",) if rt.kind == "Pod" else TEMPLATE_PATHS.get(rt.kind) if rt.group in ("", "apps", "batch") \
            else None
        target_ns = ns or ((body.get("metadata") or {}).get("namespace") if isinstance(body, dict) else None)
        namespace = self.find(self.types[("", "namespaces")], None, target_ns) if path and target_ns else None
        if namespace is not None:
            spec: Any = body
            for key in path:  # type: ignore[union-attr]
                spec = (spec or {}).get(key) if isinstance(spec, dict) else None
            labels = namespace["metadata"].get("labels") or {}
            name = (body.get("metadata") or {}).get("name") or (body.get("metadata") or {}).get("generateName", "")
            enforce = namespace_policy(labels, "enforce") if rt.kind == "Pod" else None
            if enforce and (found := violations(spec or {}, enforce[0])):
                raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: violates PodSecurity'
                               f' "{enforce[0]}:{enforce[1]}": {", ".join(found)}', {"name": name, "kind": "pods"})
            warn = namespace_policy(labels, "warn")
            if warn and (found := violations(spec or {}, warn[0])):
                warnings.append(f'would violate PodSecurity "{warn[0]}:{warn[1]}": {", ".join(found)}')
        obj, more = super().create(rt, ns, body, **kwargs)
        if warnings and not kwargs.get("dry_run"):
            meta = obj.get("metadata") or {}
            self.warnings += [(meta.get("namespace"), f"{rt.kind}/{meta.get('name')}", w) for w in warnings]
        return obj, warnings + more
