"""Which exceptions a policy acts on: exception types, or a predicate."""

from __future__ import annotations

from collections.abc import Callable

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]
ExceptionPredicate = Callable[[BaseException], bool]
ExceptionMatcher = ExceptionTypes | ExceptionPredicate


def as_predicate(label: str, spec: ExceptionMatcher) -> ExceptionPredicate:
    """Types (one, or a tuple) or a predicate, as a predicate; anything else is a TypeError."""
    if isinstance(spec, tuple):
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in spec):
            raise TypeError(f"{label}: a tuple must hold exception types only")
        types: tuple[type[BaseException], ...] = spec
    elif isinstance(spec, type):
        if not issubclass(spec, BaseException):
            raise TypeError(f"{label}: {spec.__name__} is not an exception type")
        types = (spec,)
    elif callable(spec):
        return spec
    else:
        raise TypeError(f"{label} must be an exception type, a tuple of them, or a predicate")
    return lambda exc: isinstance(exc, types)
