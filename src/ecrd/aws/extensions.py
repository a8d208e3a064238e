"""ecrd's own operations on the ECR door, written as botocore model data and merged into ECR's model, so the door
checks their input and renders their output as it does for ECR's operations, and the AWS CLI and SDKs can call
them once given the merged model (``ecrd aws-model ecr``; decision 0030).

The image pull policy operations (PutImagePullPolicy, GetImagePullPolicy, DeleteImagePullPolicy) set what may be
pulled from a repository; ECR has no such operations, so their names cannot clash with ECR's, and their IAM
actions are ``ecrd:``-prefixed.
"""

from __future__ import annotations

from typing import Any, Final

_ERRORS: Final = [
    {"shape": "ServerException"},
    {"shape": "InvalidParameterException"},
    {"shape": "RepositoryNotFoundException"},
]


def _operation(name: str, *, not_found: bool) -> dict[str, Any]:
    return {
        "name": name,
        "http": {"method": "POST", "requestUri": "/"},
        "input": {"shape": f"{name}Request"},
        "output": {"shape": f"{name}Response"},
        "errors": [
            *_ERRORS,
            {"shape": "TemplateNotFoundException"},
            *([{"shape": "ImagePullPolicyNotFoundException"}] if not_found else []),
        ],
    }


# Each operation names a repository or a repository creation template (``templatePrefix``), one of the two.
_TARGET: Final = {
    "registryId": {"shape": "RegistryId"},
    "repositoryName": {"shape": "RepositoryName"},
    "templatePrefix": {"shape": "Prefix"},
}


def _answer() -> dict[str, Any]:
    return {"type": "structure", "members": {**_TARGET, "pullPolicy": {"shape": "ImagePullPolicy"}}}


_NAMED_TARGET: Final = {"type": "structure", "members": _TARGET}

ECR_EXTENSIONS: Final[dict[str, Any]] = {
    "operations": {
        "PutImagePullPolicy": _operation("PutImagePullPolicy", not_found=False),
        "GetImagePullPolicy": _operation("GetImagePullPolicy", not_found=True),
        "DeleteImagePullPolicy": _operation("DeleteImagePullPolicy", not_found=True),
    },
    "shapes": {
        "PutImagePullPolicyRequest": {
            "type": "structure",
            "required": ["pullPolicy"],
            "members": {**_TARGET, "pullPolicy": {"shape": "ImagePullPolicy"}},
        },
        "PutImagePullPolicyResponse": _answer(),
        "GetImagePullPolicyRequest": _NAMED_TARGET,
        "GetImagePullPolicyResponse": _answer(),
        "DeleteImagePullPolicyRequest": _NAMED_TARGET,
        "DeleteImagePullPolicyResponse": _answer(),
        "ImagePullPolicy": {
            "type": "structure",
            "members": {
                "severityThreshold": {"shape": "PullSeverityThreshold"},
                "requireSignatureFrom": {"shape": "PullSigningProfileArnList"},
                "exemptPrincipals": {"shape": "PullExemptPrincipalList"},
            },
        },
        "PullSeverityThreshold": {
            "type": "string",
            "enum": ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"],
        },
        "PullSigningProfileArnList": {
            "type": "list",
            "member": {"shape": "SigningProfileArn"},
            "max": 10,
        },
        "PullExemptPrincipalList": {
            "type": "list",
            "member": {"shape": "PullExemptPrincipal"},
            "max": 100,
        },
        "PullExemptPrincipal": {
            "type": "string",
            "max": 2048,
            "min": 20,
            "pattern": "^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:[^\\s]+$",
        },
        "ImagePullPolicyNotFoundException": {
            "type": "structure",
            "members": {"message": {"shape": "ExceptionMessage"}},
            "exception": True,
        },
    },
}

EXTENSIONS: Final[dict[str, dict[str, Any]]] = {"ecr": ECR_EXTENSIONS}


def extended(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """The model data of service ``name`` with ecrd's operations and shapes added (none may replace ECR's)."""
    extension = EXTENSIONS.get(name)
    if extension is None:
        return data
    for section in ("operations", "shapes"):
        clash = set(extension[section]) & set(data[section])
        if clash:
            raise RuntimeError(f"the {name} model now defines {sorted(clash)}: rename ecrd's own")
        data[section].update(extension[section])
    return data
