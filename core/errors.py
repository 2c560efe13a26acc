"""Every error this project raises for a person to read, in one module (as pyiceberg and
delta-rs keep theirs): each is one line that says what is wrong and what to do, and the
commands' base class (core/management/base.py) prints that line and exits with the error's
`exit_status`: 1 for a failure or a difference, 2 for input that cannot be used as given."""


class ProjectError(Exception):
    """One line for the user: what is wrong and what to do."""

    exit_status = 1


class UsageError(ProjectError):
    """Input that cannot be used as given (a malformed URL, a settings file that says what no
    DMS endpoint takes): nothing was done."""

    exit_status = 2


# Storage (core/storage/)
class StorageError(ProjectError):
    """A folder or bucket that cannot be used as asked: one line, nothing written."""


class StorageUnreachable(StorageError):
    """The store did not answer (down, or the network): worth a retry when following."""


class VersionConflict(StorageError):
    """A record changed since it was read: someone else writes here."""


# The capture format (core/capture/)
class CaptureError(ProjectError):
    """A capture that cannot be read or written as asked."""


class TargetSettingsError(ProjectError, ValueError):
    """Settings that DMS would refuse, or that this project cannot write; one line."""


class ChaosError(ProjectError):
    """A delivery round that cannot run (deliver_chaos)."""


# The source side (core/seeding/, core/simulation/, core/replication/)
class MissingPrerequisite(ProjectError):
    """The database lacks rows a seeding step builds on; the message says which command to run."""


class SimulationError(ProjectError):
    """The data or the options do not allow a run."""


class ScenarioError(ProjectError):
    """The scenario cannot run on this data."""


class ReplicationSetupError(ProjectError):
    """What failed in setting up replication, and what to do."""


class UnknownColumn(ProjectError, ValueError):
    """An --exclude-column the schema does not have."""


# The lake (core/lake/)
class LakeError(ProjectError):
    """A warehouse or table that cannot be used as asked; nothing was applied."""


class CommitConflict(LakeError):
    """Another writer committed to the table since this apply planned: plan again."""


# Checks (core/verify/)
class ManifestError(ProjectError):
    """The manifest cannot be written or used."""


class Differences(ProjectError):
    """What was checked differs from what it was checked against (exit status 1)."""


class EqualityDeletes(LakeError):
    """An Iceberg table another engine gave equality delete files, which pyiceberg cannot read."""

    def __init__(self, table: str):
        super().__init__(
            f"{table}: another engine gave it equality delete files, which pyiceberg cannot "
            "read yet; read it with that engine (Spark, Trino)"
        )
