"""The exceptions aegan raises for bad input; the CLI prints their message and exits non-zero."""


class AeganError(Exception):
    """Base class: an error whose message tells the user what went wrong and what to do."""


class ConfigError(AeganError):
    """A config key, group option or value that does not exist or does not fit."""


class DataFormatError(AeganError):
    """A file that is not what it claims to be (wrong magic, truncated, undecodable)."""


class ChecksumError(AeganError):
    """A file whose checksum does not match the published one."""


class DownloadError(AeganError):
    """No source could provide a file (all mirrors, system dirs and URLs failed)."""


class SourceUnavailableError(AeganError):
    """A data source needs something the machine does not have (credentials, network, a local copy)."""


class OutputError(AeganError):
    """An output could not be written (read-only directory, disk full, permissions)."""


class TrainingDivergedError(AeganError):
    """A loss became NaN or infinite."""


class TrackingError(AeganError):
    """The MLflow backend cannot take writes (server down, database locked or corrupt)."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its class name when empty): what a one-line error quotes."""
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:limit]
