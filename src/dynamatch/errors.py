"""One error tree for dynamatch.

Every error a user can cause derives from :class:`DynamatchError` *and* from the builtin it refines,
so ``except ValueError`` keeps working.  Messages are one line that names the file (where there is
one) and says what to do.  The CLI prints ``str(error)`` and exits with status 2.
"""

from __future__ import annotations


class DynamatchError(Exception):
    """Base class of every error dynamatch raises on purpose."""


class AudioError(DynamatchError, ValueError):
    """Audio that cannot be used as given."""


class AudioFileError(AudioError, OSError):
    """A file that is missing, unreadable or not audio."""


class SampleRateMismatchError(AudioError):
    """Two signals that must share a sample rate do not."""


class LengthMismatchError(AudioError):
    """Two signals that must be the same length are not."""


class NonFiniteAudioError(AudioError):
    """NaN or infinite samples."""


class SilentAudioError(AudioError):
    """A signal with no usable energy."""


class ClippedAudioError(AudioError):
    """A signal with runs of full-scale samples (the recording clipped)."""


class UnrelatedAudioError(AudioError):
    """A dry/wet pair whose signals are not the same recording."""


class NoCompressionError(AudioError):
    """A wet signal that is the dry one times a constant gain: the device did not act on it."""


class OutputPathError(DynamatchError, OSError):
    """An output path that cannot be written."""


class ParameterError(DynamatchError, ValueError):
    """A parameter out of its valid range."""


class ArgumentError(DynamatchError, TypeError):
    """A call with an argument the function does not take (the message says what to do instead)."""


class ModelFileError(DynamatchError, ValueError):
    """A model or map file that is missing, malformed or of an unknown format version."""


class DatasetError(DynamatchError, ValueError):
    """A dataset whose layout or files are missing, unpaired or malformed."""


class ReportError(DynamatchError, ValueError):
    """A run folder, results file or ratings file that is missing, of an unknown layout or malformed."""


class ExportError(DynamatchError, RuntimeError):
    """An export or plugin build that failed."""


class TrainingError(DynamatchError, FloatingPointError):
    """A training run that cannot go on (its loss became NaN or infinite)."""
