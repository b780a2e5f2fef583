"""One error hierarchy; each class's `code` is the AWS error name the wire reports."""

from __future__ import annotations


class TastemakerError(Exception):
    """Base of every error that reaches a client. `code` is the AWS error name, `status` the HTTP status."""

    code = "InternalFailure"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputException(TastemakerError):
    code = "InvalidInputException"
    status = 400


class ValidationException(InvalidInputException):
    """A request that breaks its model's constraints, for a Personalize operation whose model declares no
    InvalidInputException (ListDatasetGroups, ListSchemas): AWS's request validation answers these with the
    common ValidationException and the same "N validation error(s) detected: ..." message."""

    code = "ValidationException"


class ResourceNotFoundException(TastemakerError):
    code = "ResourceNotFoundException"
    status = 404


class ResourceAlreadyExistsException(TastemakerError):
    code = "ResourceAlreadyExistsException"
    status = 400


class ResourceInUseException(TastemakerError):
    code = "ResourceInUseException"
    status = 409


class LimitExceededException(TastemakerError):
    code = "LimitExceededException"
    status = 400


class InvalidNextTokenException(TastemakerError):
    code = "InvalidNextTokenException"
    status = 400


class TooManyTagsException(TastemakerError):
    code = "TooManyTagsException"
    status = 400


class TooManyTagKeysException(TastemakerError):
    code = "TooManyTagKeysException"
    status = 400


class RequestEntityTooLargeException(TastemakerError):
    """A request body larger than its operation can legitimately carry (refused before it is read)."""

    code = "RequestEntityTooLargeException"
    status = 413


class UnknownOperationException(TastemakerError):
    """A request that names no operation of the three models (bad X-Amz-Target, unrouted path or method)."""

    code = "UnknownOperationException"
    status = 400


class SerializationException(TastemakerError):
    """A request body that is not the JSON document the protocol requires."""

    code = "SerializationException"
    status = 400


class NotImplementedOperation(TastemakerError):
    """An operation of the service model that Tastemaker has not built yet."""

    code = "NotImplementedException"
    status = 501


# Authentication failures: HTTP 403 with the codes boto3 users know.
class AuthError(TastemakerError):
    status = 403


class MissingAuthenticationTokenException(AuthError):
    code = "MissingAuthenticationTokenException"


class IncompleteSignatureException(AuthError):
    code = "IncompleteSignatureException"


class InvalidSignatureException(AuthError):
    code = "InvalidSignatureException"


class UnrecognizedClientException(AuthError):
    code = "UnrecognizedClientException"


class AccessDeniedException(AuthError):
    """A verified key whose policy does not allow the call (IAM's message: who, which action, which resource)."""

    code = "AccessDeniedException"


class SignatureExpiredException(AuthError):
    """Request timestamp too far from the server's clock (AWS answers InvalidSignatureException)."""

    code = "InvalidSignatureException"


class InternalFailure(TastemakerError):
    code = "InternalFailure"
    status = 500


# Outcomes of job tasks (never sent to a client: the job runner records them on the resource).
class JobFailed(Exception):
    """A task's expected failure; `reason` becomes the resource's failureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobStopped(Exception):
    """The task noticed a stop request and ended early."""
