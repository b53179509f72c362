"""Kubernetes' own syntax rules for values that end up in child objects, as regexes and limits.

Ported from k8s.io/apimachinery v0.35 (`pkg/util/validation/validation.go` and
`pkg/api/validate/content/{dns,kube}.go`: IsDNS1123Label, IsDNS1123Subdomain, IsDNS1035Label,
IsLabelKey (= IsQualifiedName), IsLabelValue, IsConfigMapKey), from
`pkg/api/validation/objectmeta.go` (TotalAnnotationSizeLimitB) and from
github.com/distribution/reference v0.6.0 `regexp.go` (image references, as the kubelet parses
them). Every regex is written for both RE2 (the API server's CEL `matches()` and OpenAPI
`pattern`) and Python's `re`: no look-around, no POSIX classes, ASCII only.

Torch- and cluster-client-free: the trainer config and the FineTuneJob API both use it.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

# --- names (apimachinery content/dns.go) -------------------------------------------------------
DNS1123_LABEL_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = f"^{DNS1123_LABEL_FMT}$"
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + r")*"
DNS1123_SUBDOMAIN = f"^{DNS1123_SUBDOMAIN_FMT}$"
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

# --- labels and annotations (apimachinery content/kube.go) -------------------------------------
# A qualified name (label or annotation key): [DNS-1123 subdomain prefix '/'] name, the name at
# most 63 characters (encoded in the {0,61}), the prefix at most 253 (QUALIFIED_PREFIX_CEL).
LABEL_NAME_FMT = r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]"
QUALIFIED_NAME = f"^({DNS1123_SUBDOMAIN_FMT}/)?{LABEL_NAME_FMT}$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_VALUE_MAX = 63
TOTAL_ANNOTATION_SIZE = 256 * 1024
"""TotalAnnotationSizeLimitB: the sum of every annotation's key and value length."""
CONFIG_MAP_KEY = r"^[-._a-zA-Z0-9]+$"


def qualified_name_cel(var: str) -> str:
    """CEL: `var` is a qualified name (label or annotation key)."""
    return (
        f"{var}.matches(r'{QUALIFIED_NAME}') && "
        f"(!{var}.contains('/') || {var}.matches('^[^/]{{1,253}}/'))"
    )


def is_qualified_name(key: str) -> bool:
    prefix, slash, _ = key.partition("/")
    return bool(re.match(QUALIFIED_NAME, key)) and (not slash or len(prefix) <= 253)


def label_value_cel(var: str) -> str:
    return f"size({var}) <= {LABEL_VALUE_MAX} && {var}.matches(r'{LABEL_VALUE}')"


def is_label_value(value: str) -> bool:
    return len(value) <= LABEL_VALUE_MAX and bool(re.match(LABEL_VALUE, value))


# --- image references (distribution/reference v0.6.0 regexp.go: ReferenceRegexp) --------------
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_PATH_COMPONENT = f"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_NAME = f"(?:{_DOMAIN_AND_PORT}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # `[\w][\w.-]{0,127}`, \w being ASCII in Go
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
IMAGE_REFERENCE = f"^{_NAME}(?::{_TAG})?(?:@{_DIGEST})?$"
IMAGE_REFERENCE_MAX = 512
"""The name is at most 255 characters (NameTotalLengthMax), a tag 128, a sha512 digest 135."""

# --- quantities (apimachinery pkg/api/resource/quantity.go) ------------------------------------
# A quantity is a signed decimal number, then a binary (Ki…Ei), decimal (n u m k M G T P E) or
# exponent (e3) suffix. POSITIVE_QUANTITY admits exactly the quantities above zero: no sign but
# `+`, and a non-zero digit in the number.
_SUFFIX = r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?"
QUANTITY = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))" + _SUFFIX + "$"
POSITIVE_QUANTITY = (
    r"^\+?(([0-9]*[1-9][0-9]*(\.[0-9]*)?)|([0-9]*\.[0-9]*[1-9][0-9]*))" + _SUFFIX + "$"
)

# --- pydantic types ---------------------------------------------------------------------------
DNSSubdomain = Annotated[
    str, StringConstraints(pattern=DNS1123_SUBDOMAIN, max_length=DNS1123_SUBDOMAIN_MAX)
]
"""An object name Kubernetes checks as a DNS-1123 subdomain (claims, Secrets, StorageClasses,
PriorityClasses, scheduler names)."""
DNSLabel = Annotated[str, StringConstraints(pattern=DNS1123_LABEL, max_length=DNS1123_LABEL_MAX)]
DNS1035Label = Annotated[str, StringConstraints(pattern=DNS1035_LABEL, max_length=63)]
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE, max_length=LABEL_VALUE_MAX)]
ConfigMapKey = Annotated[
    str, StringConstraints(pattern=CONFIG_MAP_KEY, max_length=DNS1123_SUBDOMAIN_MAX)
]
"""A key of a Secret or ConfigMap."""
ImageReference = Annotated[
    str, StringConstraints(pattern=IMAGE_REFERENCE, max_length=IMAGE_REFERENCE_MAX)
]

PATTERN_HINTS = {
    DNS1123_SUBDOMAIN: "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', "
    "starting and ending with a letter or digit, at most 253 characters (e.g. my-claim)",
    DNS1123_LABEL: "must be a DNS-1123 label: lowercase letters, digits and '-', starting and "
    "ending with a letter or digit, at most 63 characters (e.g. team-a)",
    DNS1035_LABEL: "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a "
    "letter and ending with a letter or digit, at most 63 characters",
    LABEL_VALUE: "must be a label value: at most 63 letters, digits, '-', '_' and '.', starting "
    "and ending with a letter or digit (or empty)",
    CONFIG_MAP_KEY: "must be a Secret key: letters, digits, '-', '_' and '.'",
    IMAGE_REFERENCE: "must be an image reference [registry[:port]/]name[:tag][@digest] "
    "(lowercase name, no spaces), e.g. ghcr.io/org/trainer:1.0",
    POSITIVE_QUANTITY: "must be a Kubernetes quantity above zero, e.g. 64Gi, 500m or 8",
}
"""What a pattern means, for error messages (the pattern itself helps nobody)."""
