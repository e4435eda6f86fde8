"""Exceptions raised by nzip.

Every problem with an archive or with the user's request surfaces as a
subclass of :class:`NzipError`, so callers (and the command line) can report
it in one line and never show a traceback for bad input.
"""

from __future__ import annotations


class NzipError(Exception):
    """Base class of every error nzip raises on purpose."""


class NotAnArchiveError(NzipError):
    """The data does not start with the nzip magic number."""


class UnsupportedVersionError(NzipError):
    """The archive uses a format version this nzip does not know."""


class CorruptDataError(NzipError):
    """The archive is damaged: a checksum or a structural check failed."""


class TruncatedDataError(NzipError):
    """The archive ends before its end marker."""


class ModelMismatchError(NzipError):
    """The archive was made with a model this installation does not have."""
