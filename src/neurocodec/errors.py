"""Exception hierarchy.

Every error a user can cause (bad input audio, unknown codec, corrupted stream, missing
system tool ...) derives from :class:`UserError`; the CLI prints it as one line and exits
with status 2.  Anything else that escapes is an internal bug (exit status 1).
"""

from __future__ import annotations


class NeurocodecError(Exception):
    """Base class of all neurocodec errors."""

    exit_code = 1


class UserError(NeurocodecError):
    """The user did something wrong or the input is bad (CLI exit status 2)."""

    exit_code = 2


class AudioError(UserError):
    """Input audio is unreadable, empty, non-finite or otherwise unusable."""


class UnknownCodecError(UserError):
    """No codec is registered under the requested id."""


class BitrateError(UserError):
    """The requested bitrate is not supported by the codec."""


class StreamError(UserError):
    """A file or byte string is not a valid neurocodec stream."""


class NotAStreamError(StreamError):
    """The data does not start with the neurocodec magic."""


class CorruptStreamError(StreamError):
    """A checksum mismatch or inconsistent field was found."""


class TruncatedStreamError(StreamError):
    """The stream ends before its end marker."""


class UnsupportedVersionError(StreamError):
    """The stream was written by an unknown format or codec version."""


class MissingToolError(UserError):
    """A system tool or shared library is not installed (message names the Debian package)."""


class WeightsError(UserError):
    """Trained weights for a codec are missing or do not match its configuration."""


class OutputError(UserError):
    """An output path cannot be written (missing folder, a folder, the input itself, no permission)."""
