"""The one error hierarchy: every failure a client can see, with its wire codes as class data.

Services raise these; each door renders them with exactly one function (``oci.responses.render_error``,
``aws.protocols.render_json_error``, ``aws.protocols.render_query_error``). Anything that is not an
``EcrdError`` is an internal error: a 500 with a request id, the traceback logged server-side only.
``tests/contract/test_error_table.py`` checks every code against the OCI spec and the service models, and that
this tree names every class (regenerate it when adding one).

    EcrdError
    ├── AccessDenied                       (OCI DENIED 403 · AWS AccessDeniedException)
    │   ├── PullPolicyDenied                   (OCI DENIED 403 · AWS AccessDeniedException)
    │   └── TokenExpiredDenied                 (OCI DENIED 403 · AWS AccessDeniedException)
    ├── AuthenticationError                (OCI UNAUTHORIZED 401 · AWS UnrecognizedClientException)
    │   ├── ConsoleSignInFailed                (OCI UNAUTHORIZED 401 · AWS UnrecognizedClientException)
    │   ├── ExpiredToken                       (OCI UNAUTHORIZED 401 · AWS ExpiredTokenException)
    │   ├── IncompleteSignature                (OCI UNAUTHORIZED 401 · AWS IncompleteSignatureException)
    │   ├── InvalidClientToken                 (OCI UNAUTHORIZED 401 · AWS UnrecognizedClientException)
    │   ├── InvalidSignature                   (OCI UNAUTHORIZED 401 · AWS InvalidSignatureException)
    │   ├── MissingAuthentication              (OCI UNAUTHORIZED 401 · AWS MissingAuthenticationTokenException)
    │   ├── RequestExpired                     (OCI UNAUTHORIZED 401 · AWS InvalidSignatureException)
    │   └── TokenInvalid                       (OCI UNAUTHORIZED 401 · AWS UnrecognizedClientException)
    ├── Conflict                           (OCI UNSUPPORTED 409 · AWS ServerException)
    │   ├── DeleteConflict                     (OCI UNSUPPORTED 409 · AWS ServerException)
    │   ├── EntityAlreadyExists                (OCI UNSUPPORTED 409 · AWS ServerException)
    │   ├── ImageAlreadyExists                 (OCI MANIFEST_INVALID 409 · AWS ImageAlreadyExistsException)
    │   ├── ImageReferencedByManifestList      (OCI DENIED 409 · AWS InvalidParameterException)
    │   ├── ImageStorageClassUpdateNotSupported (OCI UNSUPPORTED 400 · AWS ImageStorageClassUpdateNotSupportedException)
    │   ├── ImageTagAlreadyExists              (OCI TAG_INVALID 400 · AWS ImageTagAlreadyExistsException)
    │   ├── KmsAlreadyExists                   (OCI UNSUPPORTED 409 · AWS AlreadyExistsException)
    │   ├── KmsDisabled                        (OCI UNSUPPORTED 409 · AWS DisabledException)
    │   ├── KmsInvalidState                    (OCI UNSUPPORTED 409 · AWS KMSInvalidStateException)
    │   ├── ExclusionAlreadyExists             (OCI UNSUPPORTED 409 · AWS ExclusionAlreadyExistsException)
    │   ├── LayerAlreadyExists                 (OCI UNSUPPORTED 409 · AWS LayerAlreadyExistsException)
    │   ├── LifecyclePolicyPreviewInProgress   (OCI UNSUPPORTED 409 · AWS LifecyclePolicyPreviewInProgressException)
    │   ├── PullThroughCacheRuleAlreadyExists  (OCI UNSUPPORTED 409 · AWS PullThroughCacheRuleAlreadyExistsException)
    │   ├── RepositoryAlreadyExists            (OCI UNSUPPORTED 409 · AWS RepositoryAlreadyExistsException)
    │   ├── RepositoryNotEmpty                 (OCI UNSUPPORTED 409 · AWS RepositoryNotEmptyException)
    │   ├── SecretExists                       (OCI UNSUPPORTED 409 · AWS ResourceExistsException)
    │   └── TemplateAlreadyExists              (OCI UNSUPPORTED 409 · AWS TemplateAlreadyExistsException)
    ├── CorruptData                        (OCI BLOB_UNKNOWN 500 · AWS ServerException)
    │   └── CorruptBlob                        (OCI BLOB_UNKNOWN 500 · AWS ServerException)
    ├── InternalError                      (OCI UNKNOWN 500 · AWS ServerException)
    ├── InvalidRequest                     (OCI UNSUPPORTED 400 · AWS InvalidParameterException)
    │   ├── BlobUploadInvalid                  (OCI BLOB_UPLOAD_INVALID 400 · AWS InvalidLayerPartException)
    │   ├── DigestMismatch                     (OCI DIGEST_INVALID 400 · AWS InvalidLayerException)
    │   ├── EmptyUpload                        (OCI BLOB_UPLOAD_INVALID 400 · AWS EmptyUploadException)
    │   ├── ImageDigestMismatch                (OCI DIGEST_INVALID 400 · AWS ImageDigestDoesNotMatchException)
    │   ├── InvalidParameter                   (OCI UNSUPPORTED 400 · AWS InvalidParameterException)
    │   │   ├── DigestInvalid                      (OCI DIGEST_INVALID 400 · AWS InvalidParameterException)
    │   │   ├── MalformedPolicyDocument            (OCI UNSUPPORTED 400 · AWS InvalidParameterException)
    │   │   │   ├── KmsMalformedPolicyDocument         (OCI UNSUPPORTED 400 · AWS MalformedPolicyDocumentException)
    │   │   │   └── SecretMalformedPolicyDocument      (OCI UNSUPPORTED 400 · AWS MalformedPolicyDocumentException)
    │   │   ├── ManifestInvalid                    (OCI MANIFEST_INVALID 400 · AWS InvalidParameterException)
    │   │   ├── NameInvalid                        (OCI NAME_INVALID 400 · AWS InvalidParameterException)
    │   │   ├── PaginationTokenInvalid             (OCI PAGINATION_NUMBER_INVALID 400 · AWS InvalidParameterException)
    │   │   ├── SizeInvalid                        (OCI SIZE_INVALID 400 · AWS InvalidParameterException)
    │   │   └── TagInvalid                         (OCI TAG_INVALID 400 · AWS InvalidParameterException)
    │   ├── InvalidTagParameter                (OCI UNSUPPORTED 400 · AWS InvalidTagParameterException)
    │   ├── KmsIncorrectKey                    (OCI UNSUPPORTED 400 · AWS IncorrectKeyException)
    │   ├── KmsInvalidAliasName                (OCI UNSUPPORTED 400 · AWS InvalidAliasNameException)
    │   ├── KmsInvalidArn                      (OCI UNSUPPORTED 400 · AWS InvalidArnException)
    │   ├── KmsInvalidCiphertext               (OCI UNSUPPORTED 400 · AWS InvalidCiphertextException)
    │   ├── KmsInvalidKeyUsage                 (OCI UNSUPPORTED 400 · AWS InvalidKeyUsageException)
    │   ├── KmsInvalidMarker                   (OCI UNSUPPORTED 400 · AWS InvalidMarkerException)
    │   ├── KmsInvalidSignature                (OCI UNSUPPORTED 400 · AWS KMSInvalidSignatureException)
    │   ├── KmsTagError                        (OCI UNSUPPORTED 400 · AWS TagException)
    │   ├── KmsUnsupportedOperation            (OCI UNSUPPORTED 400 · AWS UnsupportedOperationException)
    │   ├── LimitExceeded                      (OCI UNSUPPORTED 405 · AWS LimitExceededException)
    │   │   └── KmsLimitExceeded                   (OCI UNSUPPORTED 405 · AWS LimitExceededException)
    │   ├── ManifestTooLarge                   (OCI SIZE_INVALID 413 · AWS InvalidParameterException)
    │   ├── PasswordPolicyViolation            (OCI UNSUPPORTED 400 · AWS PasswordPolicyViolationException)
    │   ├── PayloadTooLarge                    (OCI SIZE_INVALID 413 · AWS InvalidParameterException)
    │   ├── RangeNotSatisfiable                (OCI BLOB_UPLOAD_INVALID 416 · AWS InvalidLayerPartException)
    │   ├── ReplicationBackfillInProgress      (OCI UNSUPPORTED 400 · AWS ReplicationBackfillInProgressException)
    │   ├── ReplicationBackfillInvalidStatus   (OCI UNSUPPORTED 400 · AWS ReplicationBackfillInvalidStatusException)
    │   ├── SecretDecryptionFailure            (OCI UNSUPPORTED 400 · AWS DecryptionFailure)
    │   ├── SecretEncryptionFailure            (OCI UNSUPPORTED 400 · AWS EncryptionFailure)
    │   ├── SecretInvalidNextToken             (OCI UNSUPPORTED 400 · AWS InvalidNextTokenException)
    │   ├── SecretInvalidRequest               (OCI UNSUPPORTED 400 · AWS InvalidRequestException)
    │   ├── SecretPublicPolicy                 (OCI UNSUPPORTED 400 · AWS PublicPolicyException)
    │   ├── SerializationError                 (OCI UNSUPPORTED 400 · AWS SerializationException)
    │   ├── UnableToAccessSecret               (OCI UNSUPPORTED 400 · AWS UnableToAccessSecretException)
    │   ├── UnableToDecryptSecretValue         (OCI UNSUPPORTED 400 · AWS UnableToDecryptSecretValueException)
    │   ├── TooManyTags                        (OCI UNSUPPORTED 400 · AWS TooManyTagsException)
    │   ├── UnsupportedUpstreamRegistry        (OCI UNSUPPORTED 400 · AWS UnsupportedUpstreamRegistryException)
    │   ├── InvalidUserType                    (OCI UNSUPPORTED 400 · AWS InvalidUserTypeException)
    │   ├── UnknownOperation                   (OCI UNSUPPORTED 400 · AWS UnknownOperationException)
    │   ├── UnmodifiableEntity                 (OCI UNSUPPORTED 400 · AWS UnmodifiableEntityException)
    │   ├── UnsupportedMediaType               (OCI MANIFEST_INVALID 415 · AWS UnsupportedImageTypeException)
    │   ├── UnsupportedOperation               (OCI UNSUPPORTED 405 · AWS UnsupportedImageTypeException)
    │   ├── ValidationError                    (OCI UNSUPPORTED 400 · AWS ValidationException)
    │   └── VulnerabilityDataInvalid           (OCI UNSUPPORTED 400 · AWS InvalidParameterException)
    ├── KmsDryRun                          (OCI UNSUPPORTED 400 · AWS DryRunOperationException)
    ├── KmsError                           (OCI DENIED 403 · AWS KmsException)
    ├── NotFound                           (OCI UNSUPPORTED 404 · AWS ServerException)
    │   ├── BlobUnknown                        (OCI BLOB_UNKNOWN 404 · AWS LayersNotFoundException)
    │   ├── BlobUploadUnknown                  (OCI BLOB_UPLOAD_UNKNOWN 404 · AWS UploadNotFoundException)
    │   ├── ExclusionNotFound                  (OCI UNSUPPORTED 404 · AWS ExclusionNotFoundException)
    │   ├── ImagePullPolicyNotFound            (OCI UNSUPPORTED 404 · AWS ImagePullPolicyNotFoundException)
    │   ├── KmsNotFound                        (OCI UNSUPPORTED 404 · AWS NotFoundException)
    │   ├── LayersNotFound                     (OCI BLOB_UNKNOWN 404 · AWS LayersNotFoundException)
    │   ├── LifecyclePolicyNotFound            (OCI UNSUPPORTED 404 · AWS LifecyclePolicyNotFoundException)
    │   ├── LifecyclePolicyPreviewNotFound     (OCI UNSUPPORTED 404 · AWS LifecyclePolicyPreviewNotFoundException)
    │   ├── ManifestBlobUnknown                (OCI MANIFEST_BLOB_UNKNOWN 400 · AWS LayersNotFoundException)
    │   ├── ManifestUnknown                    (OCI MANIFEST_UNKNOWN 404 · AWS ImageNotFoundException)
    │   │   └── ImageArchived                      (OCI MANIFEST_UNKNOWN 404 · AWS ImageNotFoundException)
    │   ├── NoSuchEntity                       (OCI UNSUPPORTED 404 · AWS NoSuchEntityException)
    │   ├── PullThroughCacheRuleNotFound       (OCI UNSUPPORTED 404 · AWS PullThroughCacheRuleNotFoundException)
    │   ├── ReferencedImagesNotFound           (OCI MANIFEST_BLOB_UNKNOWN 400 · AWS ReferencedImagesNotFoundException)
    │   ├── RegistryPolicyNotFound             (OCI UNSUPPORTED 404 · AWS RegistryPolicyNotFoundException)
    │   ├── ReplicationBackfillNotFound        (OCI UNSUPPORTED 404 · AWS ReplicationBackfillNotFoundException)
    │   ├── RepositoryNotFound                 (OCI NAME_UNKNOWN 404 · AWS RepositoryNotFoundException)
    │   ├── RepositoryPolicyNotFound           (OCI UNSUPPORTED 404 · AWS RepositoryPolicyNotFoundException)
    │   ├── RuleSecretNotFound                 (OCI UNSUPPORTED 404 · AWS SecretNotFoundException)
    │   ├── ScanNotFound                       (OCI UNSUPPORTED 404 · AWS ScanNotFoundException)
    │   ├── SecretNotFound                     (OCI UNSUPPORTED 404 · AWS ResourceNotFoundException)
    │   ├── SigningConfigurationNotFound       (OCI UNSUPPORTED 404 · AWS SigningConfigurationNotFoundException)
    │   └── TemplateNotFound                   (OCI UNSUPPORTED 404 · AWS TemplateNotFoundException)
    ├── PeerFailure                        (OCI UNKNOWN 502 · AWS ServerException)
    ├── ScanFailed                         (OCI UNSUPPORTED 400 · AWS ServerException)
    │   └── LayerUnreadable                    (OCI UNSUPPORTED 400 · AWS ServerException)
    ├── StorageUnavailable                 (OCI UNKNOWN 503 · AWS ServerException)
    ├── TooManyRequests                    (OCI TOOMANYREQUESTS 429 · AWS ThrottlingException)
    └── UpstreamFailure                    (OCI UNKNOWN 502 · AWS ServerException)
"""

from __future__ import annotations

from typing import ClassVar


class EcrdError(Exception):
    """Base of every client-visible error; its message is what the client reads."""

    oci_code: ClassVar[str] = "UNSUPPORTED"
    oci_status: ClassVar[int] = 400
    aws_type: ClassVar[str] = "ServerException"
    aws_status: ClassVar[int] = 400
    # The AWS Query protocol (IAM, STS) names errors with its own codes.
    query_code: ClassVar[str] = "InvalidParameterValue"

    def __init__(self, message: str, *, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def extra_fields(self) -> dict[str, object]:
        """Members beyond ``message`` that the AWS error shape carries (e.g. ``lastValidByteReceived``)."""
        return {}


# -- invalid requests ---------------------------------------------------------------------------------


class InvalidRequest(EcrdError):
    aws_type = "InvalidParameterException"


class InvalidParameter(InvalidRequest):
    aws_type = "InvalidParameterException"
    query_code = "InvalidInput"


class NameInvalid(InvalidParameter):
    oci_code = "NAME_INVALID"


class TagInvalid(InvalidParameter):
    oci_code = "TAG_INVALID"


class DigestInvalid(InvalidParameter):
    oci_code = "DIGEST_INVALID"


class ManifestInvalid(InvalidParameter):
    oci_code = "MANIFEST_INVALID"


class SizeInvalid(InvalidParameter):
    oci_code = "SIZE_INVALID"


class MalformedPolicyDocument(InvalidParameter):
    query_code = "MalformedPolicyDocument"


class PaginationTokenInvalid(InvalidParameter):
    oci_code = "PAGINATION_NUMBER_INVALID"


class PasswordPolicyViolation(InvalidRequest):
    """A new console password that the account password policy refuses."""

    aws_type = "PasswordPolicyViolationException"
    query_code = "PasswordPolicyViolation"


class InvalidUserType(InvalidRequest):
    """An IAM operation only an IAM user may call (ChangePassword), called by the root or a role."""

    aws_type = "InvalidUserTypeException"
    query_code = "InvalidUserType"


class ValidationError(InvalidRequest):
    aws_type = "ValidationException"
    query_code = "ValidationError"


class ManifestTooLarge(InvalidRequest):
    oci_code = "SIZE_INVALID"
    oci_status = 413


class UnsupportedOperation(InvalidRequest):
    oci_code = "UNSUPPORTED"
    oci_status = 405
    aws_type = "UnsupportedImageTypeException"


class UnsupportedMediaType(InvalidRequest):
    oci_code = "MANIFEST_INVALID"
    oci_status = 415
    aws_type = "UnsupportedImageTypeException"


class RangeNotSatisfiable(InvalidRequest):
    oci_code = "BLOB_UPLOAD_INVALID"
    oci_status = 416
    aws_type = "InvalidLayerPartException"

    def __init__(self, message: str, *, size: int = 0, last_valid_byte: int = -1) -> None:
        super().__init__(message)
        self.size = size
        self.last_valid_byte = last_valid_byte

    def extra_fields(self) -> dict[str, object]:
        return {"lastValidByteReceived": self.last_valid_byte}


class BlobUploadInvalid(InvalidRequest):
    oci_code = "BLOB_UPLOAD_INVALID"
    aws_type = "InvalidLayerPartException"


class EmptyUpload(InvalidRequest):
    oci_code = "BLOB_UPLOAD_INVALID"
    aws_type = "EmptyUploadException"


class DigestMismatch(InvalidRequest):
    oci_code = "DIGEST_INVALID"
    aws_type = "InvalidLayerException"


class ImageDigestMismatch(InvalidRequest):
    oci_code = "DIGEST_INVALID"
    aws_type = "ImageDigestDoesNotMatchException"


class LimitExceeded(InvalidRequest):
    oci_code = "UNSUPPORTED"
    oci_status = 405
    aws_type = "LimitExceededException"
    query_code = "LimitExceeded"


class ReplicationBackfillInProgress(InvalidRequest):
    aws_type = "ReplicationBackfillInProgressException"


class ReplicationBackfillInvalidStatus(InvalidRequest):
    aws_type = "ReplicationBackfillInvalidStatusException"


class TooManyTags(InvalidRequest):
    aws_type = "TooManyTagsException"
    query_code = "LimitExceeded"


class InvalidTagParameter(InvalidRequest):
    aws_type = "InvalidTagParameterException"
    query_code = "InvalidInput"


class UnknownOperation(InvalidRequest):
    aws_type = "UnknownOperationException"
    query_code = "InvalidAction"


class SerializationError(InvalidRequest):
    aws_type = "SerializationException"
    query_code = "MalformedQueryString"


# -- not found ----------------------------------------------------------------------------------------


class NotFound(EcrdError):
    oci_status = 404
    query_code = "NoSuchEntity"


class RepositoryNotFound(NotFound):
    oci_code = "NAME_UNKNOWN"
    aws_type = "RepositoryNotFoundException"


class ManifestUnknown(NotFound):
    oci_code = "MANIFEST_UNKNOWN"
    aws_type = "ImageNotFoundException"


class ImageArchived(ManifestUnknown):
    """A pull of an image in the archive storage class (or being restored from it): ECR answers 404
    (user guide, "Archiving an image"), so clients see the manifest as unknown, with a message saying why."""


class BlobUnknown(NotFound):
    oci_code = "BLOB_UNKNOWN"
    aws_type = "LayersNotFoundException"


class LayersNotFound(NotFound):
    oci_code = "BLOB_UNKNOWN"
    aws_type = "LayersNotFoundException"


class ManifestBlobUnknown(NotFound):
    oci_code = "MANIFEST_BLOB_UNKNOWN"
    oci_status = 400
    aws_type = "LayersNotFoundException"


class ReferencedImagesNotFound(NotFound):
    oci_code = "MANIFEST_BLOB_UNKNOWN"
    oci_status = 400
    aws_type = "ReferencedImagesNotFoundException"


class BlobUploadUnknown(NotFound):
    oci_code = "BLOB_UPLOAD_UNKNOWN"
    aws_type = "UploadNotFoundException"


class RepositoryPolicyNotFound(NotFound):
    aws_type = "RepositoryPolicyNotFoundException"


class RegistryPolicyNotFound(NotFound):
    aws_type = "RegistryPolicyNotFoundException"


class ScanNotFound(NotFound):
    aws_type = "ScanNotFoundException"


class LifecyclePolicyNotFound(NotFound):
    aws_type = "LifecyclePolicyNotFoundException"


class LifecyclePolicyPreviewNotFound(NotFound):
    aws_type = "LifecyclePolicyPreviewNotFoundException"


class ExclusionNotFound(NotFound):
    aws_type = "ExclusionNotFoundException"


class ReplicationBackfillNotFound(NotFound):
    aws_type = "ReplicationBackfillNotFoundException"


class TemplateNotFound(NotFound):
    aws_type = "TemplateNotFoundException"


class ImagePullPolicyNotFound(NotFound):
    aws_type = "ImagePullPolicyNotFoundException"


class SigningConfigurationNotFound(NotFound):
    aws_type = "SigningConfigurationNotFoundException"


class NoSuchEntity(NotFound):
    aws_type = "NoSuchEntityException"
    query_code = "NoSuchEntity"


# -- conflicts ----------------------------------------------------------------------------------------


class Conflict(EcrdError):
    oci_status = 409


class RepositoryAlreadyExists(Conflict):
    aws_type = "RepositoryAlreadyExistsException"


class RepositoryNotEmpty(Conflict):
    aws_type = "RepositoryNotEmptyException"


class LifecyclePolicyPreviewInProgress(Conflict):
    aws_type = "LifecyclePolicyPreviewInProgressException"


class ExclusionAlreadyExists(Conflict):
    aws_type = "ExclusionAlreadyExistsException"


class TemplateAlreadyExists(Conflict):
    aws_type = "TemplateAlreadyExistsException"


class ImageTagAlreadyExists(Conflict):
    oci_code = "TAG_INVALID"
    oci_status = 400
    aws_type = "ImageTagAlreadyExistsException"


class ImageAlreadyExists(Conflict):
    oci_code = "MANIFEST_INVALID"
    aws_type = "ImageAlreadyExistsException"


class LayerAlreadyExists(Conflict):
    aws_type = "LayerAlreadyExistsException"


class ImageReferencedByManifestList(Conflict):
    oci_code = "DENIED"
    oci_status = 409
    aws_type = "InvalidParameterException"  # BatchDeleteImage reports it as the failure code of that name


class ImageStorageClassUpdateNotSupported(Conflict):
    oci_status = 400
    aws_type = "ImageStorageClassUpdateNotSupportedException"


class EntityAlreadyExists(Conflict):
    query_code = "EntityAlreadyExists"


class DeleteConflict(Conflict):
    query_code = "DeleteConflict"


# -- authentication and authorization -----------------------------------------------------------------


class AuthenticationError(EcrdError):
    oci_code = "UNAUTHORIZED"
    oci_status = 401
    aws_type = "UnrecognizedClientException"
    query_code = "InvalidClientTokenId"
    aws_status = 403


class MissingAuthentication(AuthenticationError):
    aws_type = "MissingAuthenticationTokenException"
    query_code = "MissingAuthenticationToken"


class InvalidClientToken(AuthenticationError):
    aws_type = "UnrecognizedClientException"
    query_code = "InvalidClientTokenId"


class InvalidSignature(AuthenticationError):
    aws_type = "InvalidSignatureException"
    query_code = "SignatureDoesNotMatch"


class IncompleteSignature(AuthenticationError):
    aws_type = "IncompleteSignatureException"
    query_code = "IncompleteSignature"
    aws_status = 400


class RequestExpired(AuthenticationError):
    aws_type = "InvalidSignatureException"
    query_code = "RequestExpired"


class ConsoleSignInFailed(AuthenticationError):
    """A console sign-in whose account, user name, password or key pair is not right (which one is not told)."""


class ExpiredToken(AuthenticationError):
    aws_type = "ExpiredTokenException"
    query_code = "ExpiredToken"


class TokenInvalid(AuthenticationError):
    """A registry password that is forged, truncated, revoked or from another registry."""


class AccessDenied(EcrdError):
    oci_code = "DENIED"
    oci_status = 403
    aws_type = "AccessDeniedException"
    query_code = "AccessDenied"
    aws_status = 400


class TokenExpiredDenied(AccessDenied):
    """ECR answers an expired registry token with 403 DENIED and this wording."""


class PullPolicyDenied(AccessDenied):
    """A pull the repository's image pull policy refuses (decision 0030); its detail names the reason and the
    count of findings at or above the threshold."""


class CorruptData(EcrdError):
    """Stored bytes that fail authentication: tampering, truncation or the wrong key. Never served."""

    oci_code = "BLOB_UNKNOWN"
    oci_status = 500
    aws_type = "ServerException"
    aws_status = 500


class CorruptBlob(CorruptData):
    """A stored blob's records that do not decrypt: tampered with, truncated, or the wrong key."""


class KmsError(EcrdError):
    """The repository's key cannot be used (disabled, pending deletion, deleted): ECR's KmsException."""

    oci_code = "DENIED"
    oci_status = 403
    aws_type = "KmsException"

    def __init__(self, message: str, *, kms_error: str) -> None:
        super().__init__(message, detail={"kmsError": kms_error})
        self.kms_error = kms_error

    def extra_fields(self) -> dict[str, object]:
        return {"kmsError": self.kms_error}


class InternalError(EcrdError):
    """Anything that is not an EcrdError, as the client sees it: a 500 with a request id, no traceback."""

    oci_code = "UNKNOWN"
    oci_status = 500
    aws_type = "ServerException"
    aws_status = 500
    query_code = "InternalFailure"


class StorageUnavailable(EcrdError):
    """The object store did not answer (timeouts, 5xx, throttling, resets) after the retries: nothing was
    stored half-written, and the same request may be sent again. 503, which clients treat as retryable."""

    oci_code = "UNKNOWN"
    oci_status = 503
    aws_type = "ServerException"
    aws_status = 503
    query_code = "InternalFailure"


class PayloadTooLarge(InvalidRequest):
    oci_code = "SIZE_INVALID"
    oci_status = 413
    aws_type = "InvalidParameterException"
    aws_status = 413
    query_code = "RequestEntityTooLarge"


class TooManyRequests(EcrdError):
    oci_code = "TOOMANYREQUESTS"
    oci_status = 429
    aws_type = "ThrottlingException"
    query_code = "Throttling"


class UnmodifiableEntity(InvalidRequest):
    """IAM: the entity is AWS's (an AWS managed policy) and the account may not change or delete it."""

    aws_type = "UnmodifiableEntityException"
    query_code = "UnmodifiableEntity"


# -- image scanning and the vulnerability database ----------------------------------------------------------


class ScanFailed(EcrdError):
    """An image could not be scanned: ECR's scan status FAILED, with this message as its description."""

    aws_type = "ServerException"
    aws_status = 500


class LayerUnreadable(ScanFailed):
    """A layer blob that is not a tar archive in a supported compression (gzip, zstd or none), or is corrupt."""


class VulnerabilityDataInvalid(InvalidRequest):
    """Advisory data that cannot be imported: not OSV JSON, JSON Lines, or an osv.dev zip archive."""


# -- the key service (KMS) ------------------------------------------------------------------------------
# Named after the KMS model's exception shapes (botocore ``kms``), which are their ``aws_type``; every one is a
# 400 in KMS's JSON 1.1 protocol.


class KmsNotFound(NotFound):
    """No such key or alias (or the key is deleted)."""

    aws_type = "NotFoundException"


class KmsAlreadyExists(Conflict):
    aws_type = "AlreadyExistsException"


class KmsDisabled(Conflict):
    """The key is Disabled: it neither encrypts nor decrypts until enabled again."""

    aws_type = "DisabledException"


class KmsInvalidState(Conflict):
    """The key's state does not allow the operation (pending deletion; not pending deletion)."""

    aws_type = "KMSInvalidStateException"


class KmsInvalidCiphertext(InvalidRequest):
    """A ciphertext blob that is not one of ours, was altered, or is presented with another encryption context."""

    aws_type = "InvalidCiphertextException"


class KmsIncorrectKey(InvalidRequest):
    aws_type = "IncorrectKeyException"


class KmsInvalidKeyUsage(InvalidRequest):
    aws_type = "InvalidKeyUsageException"


class KmsInvalidSignature(InvalidRequest):
    """Verify's answer to a signature that does not verify."""

    aws_type = "KMSInvalidSignatureException"


class KmsInvalidAliasName(InvalidRequest):
    aws_type = "InvalidAliasNameException"


class KmsInvalidArn(InvalidRequest):
    aws_type = "InvalidArnException"


class KmsInvalidMarker(InvalidRequest):
    aws_type = "InvalidMarkerException"


class KmsMalformedPolicyDocument(MalformedPolicyDocument):
    aws_type = "MalformedPolicyDocumentException"


class KmsLimitExceeded(LimitExceeded):
    aws_type = "LimitExceededException"


class KmsTagError(InvalidRequest):
    aws_type = "TagException"


class KmsUnsupportedOperation(InvalidRequest):
    aws_type = "UnsupportedOperationException"


class KmsDryRun(EcrdError):
    """The request would have succeeded; DryRun was set (KMS answers 412)."""

    aws_type = "DryRunOperationException"
    aws_status = 412


# -- the secrets service (Secrets Manager) --------------------------------------------------------------------
# Named after the Secrets Manager model's exception shapes (botocore ``secretsmanager``), which are their
# ``aws_type``; every one is a 400 in its JSON 1.1 protocol. Its InvalidParameterException and
# LimitExceededException are ``InvalidParameter`` and ``LimitExceeded``, and its denials ``AccessDenied``.


class SecretNotFound(NotFound):
    """No such secret (or it is past its deletion date), or no version with the asked id or staging label."""

    aws_type = "ResourceNotFoundException"


class SecretExists(Conflict):
    """A secret of that name exists, or a version id is already taken by another value."""

    aws_type = "ResourceExistsException"


class SecretInvalidRequest(InvalidRequest):
    """The secret's state refuses the operation (scheduled for deletion), or the parameters contradict it."""

    aws_type = "InvalidRequestException"


class SecretInvalidNextToken(InvalidRequest):
    aws_type = "InvalidNextTokenException"


class SecretMalformedPolicyDocument(MalformedPolicyDocument):
    aws_type = "MalformedPolicyDocumentException"


class SecretPublicPolicy(InvalidRequest):
    """BlockPublicPolicy refused a resource policy that grants everyone access."""

    aws_type = "PublicPolicyException"


class SecretEncryptionFailure(InvalidRequest):
    """The secret's KMS key could not encrypt the value (disabled, pending deletion, gone)."""

    aws_type = "EncryptionFailure"


class SecretDecryptionFailure(InvalidRequest):
    """The secret's KMS key could not decrypt the value (disabled, pending deletion, gone)."""

    aws_type = "DecryptionFailure"


# -- pull-through cache -------------------------------------------------------------------------------


class PullThroughCacheRuleNotFound(NotFound):
    aws_type = "PullThroughCacheRuleNotFoundException"


class PullThroughCacheRuleAlreadyExists(Conflict):
    aws_type = "PullThroughCacheRuleAlreadyExistsException"


class UnsupportedUpstreamRegistry(InvalidRequest):
    aws_type = "UnsupportedUpstreamRegistryException"


class RuleSecretNotFound(NotFound):
    """A rule's ``credentialArn`` names no secret (ECR's own exception, not Secrets Manager's)."""

    aws_type = "SecretNotFoundException"


class UnableToAccessSecret(InvalidRequest):
    """A rule's secret exists but holds no usable credentials (scheduled for deletion, not ECR's JSON shape)."""

    aws_type = "UnableToAccessSecretException"


class UnableToDecryptSecretValue(InvalidRequest):
    aws_type = "UnableToDecryptSecretValueException"


class UpstreamFailure(EcrdError):
    """The upstream registry of a pull-through cache rule refused or failed a request, or could not be reached;
    the message says what it answered. 502: the fault is upstream, and the same pull may be tried again."""

    oci_code = "UNKNOWN"
    oci_status = 502
    aws_type = "ServerException"
    aws_status = 500
    query_code = "InternalFailure"


class PeerFailure(EcrdError):
    """A peer ecrd deployment (a replication destination) refused or failed a request, or could not be reached.
    ``failure_code`` is the replication failure code it stands for; ``peer_code`` the peer's own error code."""

    oci_code = "UNKNOWN"
    oci_status = 502
    aws_type = "ServerException"
    aws_status = 500
    query_code = "InternalFailure"

    def __init__(self, message: str, *, failure_code: str, peer_code: str = "") -> None:
        super().__init__(message)
        self.failure_code = failure_code
        self.peer_code = peer_code
