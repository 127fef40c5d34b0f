"""Condition types and reasons: the words of ``status.conditions`` and of the operator's Events.

One place for every reason, so that the status logic, the reconcile, the tests and the docs agree on
the spelling (a StrEnum compares equal to its string, so a reason read back from the API matches).
"""

from __future__ import annotations

from enum import StrEnum

RESTART_ANNOTATION = "rlaif.dev/restart"  # a new value asks the operator to run a finished stage again


class ConditionType(StrEnum):
    """The four conditions every resource carries, always all four."""

    INPUTS_READY = "InputsReady"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class KstatusConditionType(StrEnum):
    """The conditions of Kubernetes' kstatus convention, on every resource beside the four, so that
    ``kubectl wait --for=condition=Ready``, kstatus (kpt, cli-utils), Flux and Argo CD tell a finished run
    from a failed one: Ready True once Succeeded; Reconciling True while the run is not finished; Stalled
    True once Failed (Ready == not Reconciling and not Stalled)."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class ExtraConditionType(StrEnum):
    """Conditions some resources carry beside the four: a finished PolicyRLRun with evaluation figures
    says whether its judge is independent of its reward (status/evaluation.py)."""

    JUDGE_INDEPENDENT = "JudgeIndependent"


class Reason(StrEnum):
    """CamelCase reasons of conditions and Events."""

    # neutral defaults
    NOT_STARTED = "NotStarted"
    NOT_FINISHED = "NotFinished"
    NO_FAILURE = "NoFailure"
    # inputs
    INPUTS_GIVEN = "InputsGiven"
    INPUTS_RESOLVED = "InputsResolved"
    UPSTREAM_SUCCEEDED = "UpstreamSucceeded"
    WAITING_FOR_UPSTREAM = "WaitingForUpstream"
    UPSTREAM_NOT_FOUND = "UpstreamNotFound"
    UPSTREAM_DELETED = "UpstreamDeleted"
    UPSTREAM_FAILED = "UpstreamFailed"
    UPSTREAM_OUTPUT_MISSING = "UpstreamOutputMissing"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_KEY_NOT_FOUND = "SecretKeyNotFound"
    INVALID_SPEC = "InvalidSpec"
    INVALID_REFERENCE = "InvalidReference"
    # children
    NAME_CONFLICT = "NameConflict"  # an object of the child's name exists and is not ours
    CREATE_FORBIDDEN = "CreateForbidden"  # the API refused a child (403: RBAC, quota, admission)
    CHILD_REJECTED = "ChildRejected"  # the API rejected a child as invalid (400/422): retrying cannot help
    # the Job and its pods
    JOB_CREATED = "JobCreated"
    JOB_RUNNING = "JobRunning"
    QUEUED = "Queued"
    UNSCHEDULABLE = "Unschedulable"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    ERR_IMAGE_PULL = "ErrImagePull"
    INVALID_IMAGE_NAME = "InvalidImageName"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    CREATE_CONTAINER_ERROR = "CreateContainerError"
    FAILED_MOUNT = "FailedMount"
    FAILED_CREATE = "FailedCreate"  # the Job controller could not create pods (admission, quota)
    MERGING = "Merging"
    GANG_RESTART = "GangRestart"  # a multi-node training group failed and is started again as a whole
    GANG_PREEMPTED = "GangPreempted"  # ... because a worker was preempted or evicted (not counted as a failure)
    RESTARTED = "Restarted"  # a rlaif.dev/restart request was acted on
    RESTART_IGNORED = "RestartIgnored"
    COMPLETED = "Completed"
    JOB_SUCCEEDED = "JobSucceeded"
    CONFIG_ERROR = "ConfigError"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    OOM_KILLED = "OOMKilled"
    JOB_FAILED = "JobFailed"
    JOB_DELETED = "JobDeleted"
    # JudgeIndependent
    JUDGE_IS_REWARD_SOURCE = "JudgeIsRewardSource"
    INDEPENDENT_JUDGE = "IndependentJudge"
    # pipelines
    STAGES_CREATED = "StagesCreated"
    CREATING_STAGES = "CreatingStages"
    STAGE_RUNNING = "StageRunning"
    STAGE_PENDING = "StagePending"
    STAGE_FAILED = "StageFailed"
    ALL_STAGES_SUCCEEDED = "AllStagesSucceeded"


# A pod waiting in one of these states is stuck until someone acts (the kubelet retries, slowly).
POD_WAITING_PROBLEMS = (Reason.IMAGE_PULL_BACK_OFF, Reason.ERR_IMAGE_PULL, Reason.INVALID_IMAGE_NAME,
                        Reason.CREATE_CONTAINER_CONFIG_ERROR, Reason.CREATE_CONTAINER_ERROR)

# Failed reasons that come from the stage's own Job: final. The stage is not run again, even once its
# Job is gone (ttlSecondsAfterFinished), unless a user asks with the rlaif.dev/restart annotation.
FINAL_FAILURES = (Reason.CONFIG_ERROR, Reason.BACKOFF_LIMIT_EXCEEDED, Reason.DEADLINE_EXCEEDED, Reason.JOB_FAILED,
                  Reason.OOM_KILLED, Reason.JOB_DELETED, Reason.CHILD_REJECTED)
